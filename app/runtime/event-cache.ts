/**
 * Recent runs' histories, so that a decision loads only the events appended since (by
 * this or any other process) instead of the whole history. An optimisation only: the
 * locked run row's last_seq says how far the history goes, and whatever the cache lacks
 * is read from the database. Only committed histories are stored (after the commit).
 */
import type { RunEvent } from "../engine/types.js";

export class EventCache {
  #runs = new Map<string, readonly RunEvent[]>();
  constructor(private readonly limit = 200) {}

  /**
   * The first events of a run whose history ends at `lastSeq` (events are numbered from 1
   * without gaps): a prefix of it, possibly empty.
   */
  prefix(runId: string, lastSeq: number): readonly RunEvent[] {
    const cached = this.#runs.get(runId);
    if (!cached) return [];
    if (cached.length > lastSeq || cached.at(-1)?.seq !== cached.length) {
      this.#runs.delete(runId); // not this history (cannot happen, but never trust a cache)
      return [];
    }
    return cached;
  }

  /** Remember a committed history (numbered 1..n); a shorter one never replaces a longer. */
  remember(runId: string, events: readonly RunEvent[], finished: boolean): void {
    if (finished) {
      this.#runs.delete(runId);
      return;
    }
    const cached = this.#runs.get(runId);
    if (cached && cached.length >= events.length) return;
    this.#runs.delete(runId); // re-insert: the most recently used is the last evicted
    if (this.#runs.size >= this.limit) {
      const oldest = this.#runs.keys().next().value;
      if (oldest !== undefined) this.#runs.delete(oldest);
    }
    this.#runs.set(runId, events);
  }
}
