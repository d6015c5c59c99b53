/**
 * `/baton …` commands in issue and pull-request comments:
 *
 *   /baton run <flow> [key=value …] [--draft]
 *   /baton approve [step] [comment…]
 *   /baton reject [step] [comment…]
 *
 * The command is the first line that starts with `/baton`; other lines are ignored, so a
 * command can sit in a longer comment. Values may be quoted ("a b" or 'a b').
 */
export type BatonCommand =
  | { kind: "run"; flow: string; inputs: Record<string, string>; draft: boolean }
  | { kind: "approve" | "reject"; step?: string; comment?: string };

export type ParsedCommand =
  | { ok: true; command: BatonCommand }
  | { ok: false; error: string }
  /** The comment holds no `/baton` command. */
  | undefined;

const USAGE =
  "Usage: `/baton run <flow> [key=value …] [--draft]`, `/baton approve [step] [comment]`, " +
  "`/baton reject [step] [comment]`.";

export function parseBatonCommand(body: string): ParsedCommand {
  const line = body
    .split(/\r?\n/)
    .map((l) => l.trim())
    .find((l) => /^\/baton(\s|$)/.test(l));
  if (line === undefined) return undefined;
  const words = splitWords(line.slice("/baton".length));
  if (!words.ok) return { ok: false, error: words.error };
  const [verb, ...rest] = words.words;
  switch (verb) {
    case "run":
      return parseRun(rest);
    case "approve":
    case "reject": {
      const [first, ...others] = rest;
      // A step id is one word of step-id characters; anything else starts the comment.
      const isStep = first !== undefined && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(first);
      const commentWords = isStep ? others : rest;
      return {
        ok: true,
        command: {
          kind: verb,
          ...(isStep ? { step: first } : {}),
          ...(commentWords.length > 0 ? { comment: commentWords.join(" ") } : {}),
        },
      };
    }
    case undefined:
      return { ok: false, error: `\`/baton\` needs a command. ${USAGE}` };
    default:
      return { ok: false, error: `Unknown command \`${verb}\`. ${USAGE}` };
  }
}

function parseRun(args: string[]): ParsedCommand {
  let flow: string | undefined;
  let draft = false;
  const inputs: Record<string, string> = {};
  for (const arg of args) {
    if (arg === "--draft") draft = true;
    else if (arg.startsWith("--"))
      return { ok: false, error: `Unknown option \`${arg}\`. ${USAGE}` };
    else if (flow === undefined) flow = arg;
    else {
      const eq = arg.indexOf("=");
      if (eq <= 0) return { ok: false, error: `Expected key=value, got \`${arg}\`. ${USAGE}` };
      const key = arg.slice(0, eq);
      if (key in inputs) return { ok: false, error: `Input \`${key}\` is given twice.` };
      inputs[key] = arg.slice(eq + 1);
    }
  }
  if (flow === undefined) return { ok: false, error: `Which flow? ${USAGE}` };
  return { ok: true, command: { kind: "run", flow: flow.replace(/\.ya?ml$/, ""), inputs, draft } };
}

/** Split on whitespace, honouring "double" and 'single' quotes (also around a value: k="a b"). */
function splitWords(text: string): { ok: true; words: string[] } | { ok: false; error: string } {
  const words: string[] = [];
  let current = "";
  let inWord = false;
  let quote: string | undefined;
  for (const char of text) {
    if (quote) {
      if (char === quote) quote = undefined;
      else current += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(current);
      current = "";
      inWord = false;
    } else {
      current += char;
      inWord = true;
    }
  }
  if (quote) return { ok: false, error: `A quote (${quote}) is not closed.` };
  if (inWord) words.push(current);
  return { ok: true, words };
}
