/** Errors of the GitHub side of Baton: named classes with the fields a caller acts on. */

/**
 * A handler throws this when retrying cannot help (the payload is not what it expects, the
 * repository is gone): the delivery is marked `failed` at once instead of retried.
 * Any other error is taken as transient and retried with backoff.
 */
export class PermanentDeliveryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PermanentDeliveryError";
  }
}

/**
 * This worker no longer holds the delivery: its lease expired (the handler took longer
 * than `leaseMs`) and another worker claimed it. Whatever the handler wrote through
 * `commit` is rolled back; the other worker's attempt is the one that counts.
 */
export class DeliveryLeaseLostError extends Error {
  constructor(
    readonly deliveryId: string,
    readonly workerId: string,
  ) {
    super(
      `Worker ${workerId} lost its claim on webhook delivery ${deliveryId} (its lease expired); ` +
        `another worker processes it. Raise leaseMs if handlers legitimately take this long.`,
    );
    this.name = "DeliveryLeaseLostError";
  }
}

/** A handler called `commit` twice: a delivery is marked processed in exactly one transaction. */
export class DeliveryAlreadyCommittedError extends Error {
  constructor(readonly deliveryId: string) {
    super(
      `The handler of webhook delivery ${deliveryId} called commit() twice: put all of its ` +
        `database writes in one commit() call.`,
    );
    this.name = "DeliveryAlreadyCommittedError";
  }
}
