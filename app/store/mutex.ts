/** A FIFO mutex: `run(fn)` waits for every earlier `run` to settle, then calls `fn`. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    // The chain must not reject, or every later caller would see this caller's error.
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
