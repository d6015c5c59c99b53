/**
 * Recent runs' histories and their folds, so that a decision loads only the events
 * appended since (by this or any other process) and applies only those to the fold,
 * instead of loading and folding the whole history: the cost of a step does not grow
 * with the run. An optimisation only: the locked run row's last_seq says how far the
 * history goes, whatever the cache lacks is read from the database, and the fold of a
 * history is the same however it was reached (test/engine/incremental.test.ts). Only
 * committed histories are stored (after the commit).
 */
import type { Fold } from "../engine/replay.js";
import type { RunEvent } from "../engine/types.js";

export interface CachedRun {
  /** The first events of the history, numbered 1..n. */
  events: readonly RunEvent[];
  /** The fold of exactly those events: never changed (`detach` it to go on). */
  fold: Fold;
}

export class EventCache {
  #runs = new Map<string, CachedRun>();
  constructor(private readonly limit = 200) {}

  /**
   * The first events of a run whose history ends at `lastSeq` (events are numbered from 1
   * without gaps), with their fold: a prefix of it, or undefined.
   */
  prefix(runId: string, lastSeq: number): CachedRun | undefined {
    const cached = this.#runs.get(runId);
    if (!cached) return undefined;
    const { events, fold } = cached;
    if (
      events.length > lastSeq ||
      events.at(-1)?.seq !== events.length ||
      fold.lastSeq !== events.length
    ) {
      this.#runs.delete(runId); // not this history (cannot happen, but never trust a cache)
      return undefined;
    }
    return cached;
  }

  /** Remember a committed history (numbered 1..n) and its fold; a shorter one never replaces a longer. */
  remember(runId: string, run: CachedRun, finished: boolean): void {
    if (finished) {
      this.#runs.delete(runId);
      return;
    }
    const cached = this.#runs.get(runId);
    if (cached && cached.events.length >= run.events.length) return;
    this.#runs.delete(runId); // re-insert: the most recently used is the last evicted
    if (this.#runs.size >= this.limit) {
      const oldest = this.#runs.keys().next().value;
      if (oldest !== undefined) this.#runs.delete(oldest);
    }
    this.#runs.set(runId, run);
  }
}
