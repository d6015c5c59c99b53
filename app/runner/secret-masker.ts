/**
 * Masking secrets in what a step shows: its log, its outputs, its error. As GitHub Actions
 * does with its secrets, every occurrence of a secret's value (and of each line of a
 * multi-line value) becomes `***` before it leaves the runner, so it never reaches the
 * server's logs, `baton logs`, `baton show` or a check run.
 *
 * Output arrives in pieces, and a secret may be cut across two of them: a stream holds
 * back the end of what it was given while that end could be the start of a secret, and
 * lets it go when the next piece shows it is not (or when the stream ends).
 *
 * What it cannot catch (nor can Actions): a secret the step transforms (base64, reversed,
 * split by a space) before printing it.
 */

export const MASK = "***";

/**
 * Shorter values would mask ordinary text all over the log; the runner's configuration
 * refuses secrets this short, and lines of multi-line secrets this short are not masked.
 */
export const MIN_SECRET_CHARS = 4;

export interface MaskStream {
  write(text: string): void;
  /** Let go of anything held back (masked). */
  end(): void;
}

export class SecretMasker {
  /** Longest first, so that a secret containing another is masked whole. */
  readonly #values: string[];
  readonly #longest: number;

  constructor(secrets: Iterable<string>) {
    const values = new Set<string>();
    for (const secret of secrets) {
      if (secret.length >= MIN_SECRET_CHARS) values.add(secret);
      for (const line of secret.split(/\r?\n/)) {
        const trimmed = line.trim();
        if (trimmed.length >= MIN_SECRET_CHARS) values.add(trimmed);
      }
    }
    this.#values = [...values].sort((a, b) => b.length - a.length);
    this.#longest = this.#values[0]?.length ?? 0;
  }

  get empty(): boolean {
    return this.#values.length === 0;
  }

  mask(text: string): string {
    let masked = text;
    for (const value of this.#values)
      if (masked.includes(value)) masked = masked.split(value).join(MASK);
    return masked;
  }

  maskAll(values: Record<string, string>): Record<string, string> {
    if (this.empty) return values;
    return Object.fromEntries(
      Object.entries(values).map(([name, value]) => [name, this.mask(value)]),
    );
  }

  /** A stream of pieces of text, masked, to `emit`. */
  stream(emit: (text: string) => void): MaskStream {
    if (this.empty) return { write: (text) => text !== "" && emit(text), end: () => undefined };
    let held = "";
    return {
      write: (text) => {
        const masked = this.mask(held + text);
        const keep = this.#heldBack(masked);
        held = masked.slice(masked.length - keep);
        const ready = masked.slice(0, masked.length - keep);
        if (ready !== "") emit(ready);
      },
      end: () => {
        if (held !== "") emit(this.mask(held));
        held = "";
      },
    };
  }

  /** How many trailing characters of `text` could begin a secret. */
  #heldBack(text: string): number {
    for (let length = Math.min(this.#longest - 1, text.length); length > 0; length--) {
      const tail = text.slice(text.length - length);
      if (this.#values.some((value) => value.startsWith(tail))) return length;
    }
    return 0;
  }
}
