/**
 * Attempts executing in this process, by idempotency key, so that a cancellation can stop
 * them at once. An optimisation only: the database is the truth (an execution also checks,
 * on every lease renewal, that its attempt is still current), and other processes learn
 * of cancellations through a notification.
 */
export class RunningAttempts {
  #controllers = new Map<string, AbortController>();

  start(key: string): AbortController {
    const controller = new AbortController();
    this.#controllers.set(key, controller);
    return controller;
  }

  finish(key: string, controller: AbortController): void {
    if (this.#controllers.get(key) === controller) this.#controllers.delete(key);
  }

  /** Stop the attempt if it runs here. True if it did. */
  abort(key: string, reason: Error): boolean {
    const controller = this.#controllers.get(key);
    if (!controller) return false;
    controller.abort(reason);
    return true;
  }

  abortAll(reason: Error): void {
    for (const controller of this.#controllers.values()) controller.abort(reason);
  }

  get size(): number {
    return this.#controllers.size;
  }
}

/** Why an execution was stopped; the execute task records an outcome only for cancellations. */
export class AttemptCancelledError extends Error {
  constructor(message = "cancelled") {
    super(message);
    this.name = "AttemptCancelledError";
  }
}

/** The process is shutting down: the attempt is stopped and its task given back, not failed. */
export class ShutdownError extends Error {
  constructor() {
    super("the Baton process is shutting down; the attempt will run again elsewhere");
    this.name = "ShutdownError";
  }
}

/** The lease was lost: another process owns the attempt now. */
export class LeaseTakenOverError extends Error {
  constructor() {
    super("the lease on this attempt was lost to another process");
    this.name = "LeaseTakenOverError";
  }
}
