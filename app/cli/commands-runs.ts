/**
 * The commands that act on runs: `runs`, `show`, `logs`, `approve`, `reject`, `signal`,
 * `cancel`, `retry`, and `webhook-secret` for a flow. Each parses its arguments, connects
 * (`connect.ts`), makes one API call, and prints text for people or, with `--json`, one
 * JSON document for machines.
 */
import type { Json, RunStatus } from "../engine/types.js";
import type { RunSummary } from "../http/api.js";
import { parseCommandArgs, requireRepository } from "./args.js";
import { connect } from "./connect.js";
import type { CliIo, Command } from "./io.js";
import { EXIT, UsageError } from "./io.js";
import { formatDuration, renderRun, runStatusWord, styleFor } from "./render-run.js";
import { followRun } from "./follow-run.js";

const RUN_STATUSES: RunStatus[] = [
  "queued",
  "running",
  "compensating",
  "success",
  "failure",
  "cancelled",
];

function printJson(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function requireArg(value: string | undefined, what: string): string {
  if (value === undefined || value === "") throw new UsageError(`missing ${what}`);
  return value;
}

const RUN_REF_HELP =
  "<run> is a run id, a unique prefix of one, <flow>#<number>, or <owner>/<repo>/<flow>#<number>.\n";

export const runsCommand: Command = async (args, io) => {
  const { values, help } = parseCommandArgs(args, {
    repo: { type: "string" },
    flow: { type: "string" },
    status: { type: "string" },
    limit: { type: "string" },
    json: { type: "boolean" },
  });
  if (help) {
    io.stdout.write(
      "Usage: baton runs [--repo OWNER/REPO] [--flow NAME] [--status STATUS] [--limit N] [--json]\n\n" +
        "List runs, newest first.\n" +
        "  --repo  only the runs of this repository; required against a GitHub app (--url),\n" +
        "          which shows a repository's runs to those who can read it\n",
    );
    return EXIT.ok;
  }
  const repository =
    values.repo === undefined ? undefined : requireRepository(values.repo, "--repo");
  if (values.status !== undefined && !RUN_STATUSES.includes(values.status as RunStatus)) {
    throw new UsageError(`--status must be one of ${RUN_STATUSES.join(", ")}`);
  }
  const limit = values.limit === undefined ? 20 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new UsageError("--limit must be 1 to 1000");
  const session = await connect(io);
  try {
    const runs = await session.api.listRuns({
      repository,
      flow: values.flow,
      status: values.status as RunStatus | undefined,
      limit,
    });
    if (values.json) printJson(io, runs);
    else io.stdout.write(renderRunList(runs, io));
    return EXIT.ok;
  } finally {
    await session.close();
  }
};

function renderRunList(runs: RunSummary[], io: CliIo): string {
  if (runs.length === 0) return "No runs yet. Start one with `baton run <flow.yml>`.\n";
  const style = styleFor(io.stdout, io.env);
  const lines = runs.map((run) => {
    const duration =
      run.finishedAt !== undefined ? formatDuration(run.finishedAt - run.createdAt) : "";
    const name = run.repository === "local" ? run.flow : `${run.repository}/${run.flow}`;
    return `${run.id.slice(0, 8)}  ${`${name} #${run.number}`.padEnd(28)}  ${runStatusWord(run.status, style).padEnd(12)}  ${new Date(run.createdAt).toISOString()}  ${duration}`;
  });
  return `${lines.join("\n")}\n`;
}

export const showCommand: Command = async (args, io) => {
  const { values, positionals, help } = parseCommandArgs(args, { json: { type: "boolean" } });
  if (help) {
    io.stdout.write(
      `Usage: baton show <run> [--json]\n\nShow a run: its steps, outputs and history.\n${RUN_REF_HELP}`,
    );
    return EXIT.ok;
  }
  const ref = requireArg(positionals[0], "<run>");
  const session = await connect(io);
  try {
    const run = await session.api.getRun(ref);
    if (values.json) printJson(io, run);
    else io.stdout.write(renderRun(run, styleFor(io.stdout, io.env)));
    return EXIT.ok;
  } finally {
    await session.close();
  }
};

export const logsCommand: Command = async (args, io) => {
  const { values, positionals, help } = parseCommandArgs(args, { json: { type: "boolean" } });
  if (help) {
    io.stdout.write(
      `Usage: baton logs <run> [step] [--json]\n\nPrint the output of a run's steps.\n${RUN_REF_HELP}`,
    );
    return EXIT.ok;
  }
  const ref = requireArg(positionals[0], "<run>");
  const session = await connect(io);
  try {
    const lines = await session.api.getLogs(ref, positionals[1]);
    if (values.json) {
      printJson(io, lines);
      return EXIT.ok;
    }
    const multi = new Set(lines.map((line) => `${line.step}/${line.attempt}`)).size > 1;
    for (const line of lines) {
      const text = line.text.endsWith("\n") ? line.text : `${line.text}\n`;
      const prefix = multi ? `${line.step}#${line.attempt} | ` : "";
      const target = line.stream === "stderr" ? io.stderr : io.stdout;
      target.write(prefix === "" ? text : text.replace(/^(?=.)/gm, prefix));
    }
    return EXIT.ok;
  } finally {
    await session.close();
  }
};

function decideCommand(decision: "approve" | "reject"): Command {
  return async (args, io) => {
    const { values, positionals, help } = parseCommandArgs(args, {
      comment: { type: "string", short: "m" },
      as: { type: "string" },
      json: { type: "boolean" },
    });
    if (help) {
      io.stdout.write(
        `Usage: baton ${decision} <run> <step> [--comment TEXT] [--as LOGIN] [--json]\n\n` +
          `${decision === "approve" ? "Approve" : "Reject"} a waiting approval step. The flow's policy decides whether it counts;\n` +
          "a refused attempt is recorded in the run's history with the reason.\n" +
          "--as acts as another person; it is accepted in local mode only, to try approval policies.\n" +
          "Against a GitHub app, you act as the token's account, with the permission GitHub reports.\n" +
          RUN_REF_HELP,
      );
      return EXIT.ok;
    }
    const ref = requireArg(positionals[0], "<run>");
    const step = requireArg(positionals[1], "<step>");
    const session = await connect(io, { actor: values.as });
    try {
      const verdict = await session.api.decide(ref, step, decision, values.comment);
      if (values.json) printJson(io, { run: ref, step, decision, ...verdict });
      else if (!verdict.counted)
        io.stderr.write(`Refused: ${verdict.reason ?? "the approval policy does not allow it"}\n`);
      else
        io.stdout.write(
          `${decision === "approve" ? "Approved" : "Rejected"} ${step} of ${ref} as ${verdict.user ?? session.actor}.\n`,
        );
      if (verdict.counted && session.api.executesRuns && !session.hosted) {
        io.stderr.write(
          "No Baton process is running: the run continues when one starts (`baton serve`).\n",
        );
      }
      return verdict.counted ? EXIT.ok : EXIT.failure;
    } finally {
      await session.close();
    }
  };
}

export const approveCommand = decideCommand("approve");
export const rejectCommand = decideCommand("reject");

export const signalCommand: Command = async (args, io) => {
  const { values, positionals, help } = parseCommandArgs(args, {
    data: { type: "string", short: "d" },
    json: { type: "boolean" },
  });
  if (help) {
    io.stdout.write(
      "Usage: baton signal <run> <name> [--data JSON]\n\nSend a named signal to a run; a `wait: { signal: name }` step receives it,\nits data as the step's `payload` output. Signals sent early are kept until a step waits for them.\n" +
        RUN_REF_HELP,
    );
    return EXIT.ok;
  }
  const ref = requireArg(positionals[0], "<run>");
  const name = requireArg(positionals[1], "<name>");
  let payload: Json = null;
  if (values.data !== undefined) {
    try {
      payload = JSON.parse(values.data) as Json;
    } catch {
      throw new UsageError(`--data must be JSON, e.g. --data '{"ok":true}' or --data '"text"'`);
    }
  }
  const session = await connect(io);
  try {
    await session.api.signal(ref, name, payload);
    if (values.json) printJson(io, { run: ref, signal: name, sent: true });
    else io.stdout.write(`Signal ${name} sent to ${ref}.\n`);
    return EXIT.ok;
  } finally {
    await session.close();
  }
};

export const cancelCommand: Command = async (args, io) => {
  const { values, positionals, help } = parseCommandArgs(args, {
    reason: { type: "string" },
    json: { type: "boolean" },
  });
  if (help) {
    io.stdout.write(
      "Usage: baton cancel <run> [--reason TEXT]\n\nCancel a run: running steps are stopped, completed steps are compensated.\n" +
        RUN_REF_HELP,
    );
    return EXIT.ok;
  }
  const ref = requireArg(positionals[0], "<run>");
  const session = await connect(io);
  try {
    // Without a reason, whoever acts (the token's account, remotely) is named in it.
    await session.api.cancel(ref, values.reason);
    if (values.json) printJson(io, { run: ref, cancelRequested: true });
    else io.stdout.write(`Cancel requested for ${ref}.\n`);
    return EXIT.ok;
  } finally {
    await session.close();
  }
};

export const retryCommand: Command = async (args, io) => {
  const { values, positionals, help } = parseCommandArgs(args, {
    from: { type: "string" },
    wait: { type: "boolean" },
    json: { type: "boolean" },
  });
  if (help) {
    io.stdout.write(
      "Usage: baton retry <run> [--from STEP] [--wait] [--json]\n\nRerun a finished run as a new attempt: steps that succeeded keep their outputs;\n" +
        "failed, cancelled and skipped steps run again. --from reruns that step and all after it.\n" +
        RUN_REF_HELP,
    );
    return EXIT.ok;
  }
  const ref = requireArg(positionals[0], "<run>");
  const session = await connect(io, { host: values.wait === true });
  try {
    const before = await session.api.getRun(ref);
    await session.api.retry(before.id, values.from);
    if (!values.wait) {
      if (values.json) printJson(io, { run: before.id, retryRequested: true });
      else io.stdout.write(`Rerun requested for ${before.flow} #${before.number}.\n`);
      return EXIT.ok;
    }
    return await followRun(session, io, before.id, {
      json: values.json === true || io.stdout.isTTY !== true,
      minAttempt: before.state.runAttempt + 1,
    });
  } finally {
    await session.close();
  }
};

export const webhookSecretCommand: Command = async (args, io) => {
  const { values, positionals, help } = parseCommandArgs(args, {
    rotate: { type: "boolean" },
    json: { type: "boolean" },
  });
  if (help) {
    io.stdout.write(
      "Usage: baton webhook-secret <owner/repo> <flow> [--rotate] [--json]\n\n" +
        "Print the secret that signs requests to a live flow's webhook trigger (`on.webhook`):\n" +
        "POST /api/flows/<owner>/<repo>/<flow>/webhook with the headers\n" +
        "X-Baton-Timestamp: <Unix seconds>, X-Baton-Delivery: <a new id per request> and\n" +
        "X-Baton-Signature-256: sha256=<HMAC-SHA256 of v1:<timestamp>:<delivery>:<body>, hex>.\n" +
        "Repository admins only.\n" +
        "  --rotate  make a new secret; the old one stops working at once\n" +
        "Keep the secret where the sender keeps secrets; Baton does not show it in logs.\n",
    );
    return EXIT.ok;
  }
  const repository = requireRepository(positionals[0], "<owner/repo>");
  const flow = requireArg(positionals[1], "<flow>");
  if (positionals.length > 2) throw new UsageError(`unexpected argument '${positionals[2]}'`);
  const session = await connect(io);
  try {
    const secret = await session.api.webhookSecret(repository, flow, {
      rotate: values.rotate === true,
    });
    const base = io.env.BATON_URL;
    const url = base ? new URL(secret.path, base).toString() : secret.path;
    if (values.json) printJson(io, { ...secret, url });
    else
      io.stdout.write(
        `${secret.rotated ? "New webhook secret" : "Webhook secret"} of ${secret.repository}/${secret.flow}:\n` +
          `${secret.secret}\n\nPOST ${url}\nsigned with it: X-Baton-Timestamp: <Unix seconds>, X-Baton-Delivery: <a new id>,\n` +
          `X-Baton-Signature-256: sha256=<HMAC-SHA256 of v1:<timestamp>:<delivery>:<body>, hex>.\n`,
      );
    return EXIT.ok;
  } finally {
    await session.close();
  }
};
