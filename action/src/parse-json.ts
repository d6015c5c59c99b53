import { InputError } from "./errors.js";

/** JSON parsed from an input, or an InputError naming the input and the parser's reason. */
export function parseJsonInput(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error: unknown) {
    throw new InputError(
      `${where} is not valid JSON (${error instanceof Error ? error.message : String(error)}).`,
      { cause: error },
    );
  }
}
