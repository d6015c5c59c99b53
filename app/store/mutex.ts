/**
 * A mutex with two lanes: `run(fn)` waits for every earlier `run` to settle, then calls
 * `fn` (first in, first out); `run(fn, { urgent: true })` goes before every waiting
 * non-urgent caller (after the one running, and after earlier urgent ones).
 */
export class Mutex {
  readonly #normal: (() => void)[] = [];
  readonly #urgent: (() => void)[] = [];
  #busy = false;

  run<T>(fn: () => Promise<T>, options: { urgent?: boolean } = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = (): void => {
        fn()
          .then(resolve, reject)
          .finally(() => this.#next());
      };
      if (!this.#busy) {
        this.#busy = true;
        start();
      } else {
        (options.urgent ? this.#urgent : this.#normal).push(start);
      }
    });
  }

  #next(): void {
    const start = this.#urgent.shift() ?? this.#normal.shift();
    if (start) start();
    else this.#busy = false;
  }
}
