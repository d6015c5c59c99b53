/**
 * From a path in the parsed data back to the text it came from: the YAML node, its key,
 * and, inside a string, the offset of one character. This is what lets every diagnostic
 * point at the offending text rather than at the file.
 */
import type { Document, Node, Pair, Scalar } from "yaml";
import { isAlias, isMap, isScalar, isSeq } from "yaml";
import type { DocumentPath } from "./diagnostic.js";

export interface Located {
  /** The value node at the path, when the path exists in the text. */
  node?: Node;
  /** The pair whose value it is (for map entries): its key is what "unknown key" points at. */
  pair?: Pair;
  /** How many segments of the path were found; less than the path length if it is missing. */
  depth: number;
}

type AnyDocument = Document.Parsed | Document;

function resolve(document: AnyDocument, node: unknown): unknown {
  // An alias's target is already validated for resource use by toJS; here we only follow it.
  return isAlias(node) ? node.resolve(document) : node;
}

/** A scalar key as the data has it: `1:` is the key "1", `~:` the key "". */
export function scalarKeyText(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  return JSON.stringify(value) ?? "";
}

function keyText(pair: Pair): string | undefined {
  const key = pair.key;
  return isScalar(key) ? scalarKeyText(key.value) : undefined;
}

/** Follows a data path through maps, lists and aliases. With duplicate keys, the last wins (as in the data). */
export function locate(document: AnyDocument, path: DocumentPath): Located {
  let current: unknown = document.contents;
  let pair: Pair | undefined;
  let depth = 0;
  for (const segment of path) {
    const node = resolve(document, current);
    let next: unknown;
    let nextPair: Pair | undefined;
    if (isMap(node)) {
      for (const item of node.items) {
        if (keyText(item) === String(segment)) {
          nextPair = item;
          next = item.value;
        }
      }
      if (!nextPair) break;
    } else if (isSeq(node) && typeof segment === "number") {
      next = node.items[segment];
      if (next === undefined) break;
      nextPair = undefined;
    } else break;
    current = next;
    pair = nextPair;
    depth += 1;
  }
  const found = depth === path.length;
  return {
    ...(found && current ? { node: current as Node } : {}),
    ...(found && pair ? { pair } : {}),
    depth,
  };
}

/** [start, end) offsets of a node's value text (without trailing comments). */
export function nodeRange(node: Node | Scalar | null | undefined): [number, number] | undefined {
  const range = node?.range;
  if (!range) return undefined;
  return [range[0], range[1]];
}

/**
 * For a string scalar, the source offset of each character of its value, when the mapping
 * is exact: plain and quoted scalars (escapes included), and block scalars (`|`, `>`)
 * whose lines map one to one. Returns undefined when it cannot be exact (e.g. folded text
 * with blank lines), and callers fall back to the scalar's start. The result is verified:
 * the characters at the offsets must spell the value.
 */
export function scalarOffsets(source: string, node: Scalar): number[] | undefined {
  const value = node.value;
  const range = node.range;
  if (typeof value !== "string" || !range) return undefined;
  const [start, end] = range;
  const offsets: number[] = [];
  const type = node.type;
  if (type === "QUOTE_SINGLE" || type === "QUOTE_DOUBLE") {
    const quote = source[start];
    for (let at = start + 1; at < end - 1; at += 1) {
      const char = source[at];
      if (quote === "'" && char === "'" && source[at + 1] === "'") {
        offsets.push(at);
        at += 1;
      } else if (quote === '"' && char === "\\") {
        const next = source[at + 1];
        // Multi-character escapes (\x, \u, \U, line continuations) make the map inexact.
        if (next === undefined || "xuUN_LP\n\r".includes(next)) return undefined;
        offsets.push(at);
        at += 1;
      } else if (char === "\n" || char === "\r") {
        return undefined; // folded quoted lines: not worth mapping exactly
      } else offsets.push(at);
    }
    return verify(source, value, offsets, type === "QUOTE_DOUBLE");
  }
  if (type === "PLAIN") {
    if (source.slice(start, end) === value) return Array.from(value, (_, index) => start + index);
    return undefined;
  }
  if (type === "BLOCK_LITERAL" || type === "BLOCK_FOLDED") {
    // The header (`|`, `|-`, `>2`…) ends its line; content lines follow, sharing an indent.
    const headerEnd = source.indexOf("\n", start);
    if (headerEnd === -1) return undefined;
    const lines: { offset: number; text: string }[] = [];
    let lineStart = headerEnd + 1;
    while (lineStart < end) {
      let lineEnd = source.indexOf("\n", lineStart);
      if (lineEnd === -1 || lineEnd > end) lineEnd = end;
      lines.push({ offset: lineStart, text: source.slice(lineStart, lineEnd).replace(/\r$/, "") });
      lineStart = lineEnd + 1;
    }
    const contentLines = lines.filter((line) => line.text.trim() !== "");
    const indent = Math.min(...contentLines.map((line) => line.text.search(/\S/)));
    if (!Number.isFinite(indent)) return undefined;
    for (const line of lines) {
      for (let index = indent; index < line.text.length; index += 1)
        offsets.push(line.offset + index);
      offsets.push(line.offset + line.text.length); // the line break (or folding space)
    }
    return verify(source, value, offsets.slice(0, value.length), false, true);
  }
  return undefined;
}

function verify(
  source: string,
  value: string,
  offsets: number[],
  escapes: boolean,
  block = false,
): number[] | undefined {
  if (offsets.length !== value.length) return undefined;
  for (let index = 0; index < value.length; index += 1) {
    const char = value[index];
    const at = offsets[index] ?? -1;
    const sourceChar = source[at];
    if (sourceChar === char) continue;
    if (escapes && sourceChar === "\\") continue;
    // In block scalars a line break may be folded to a space.
    if (block && (char === "\n" || char === " ") && (sourceChar === "\n" || sourceChar === "\r"))
      continue;
    if (block && at === source.length && char === "\n") continue;
    return undefined;
  }
  return offsets;
}
