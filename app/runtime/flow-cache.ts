/**
 * Flow versions by id. Versions are immutable, so caching them in memory is safe in any
 * number of processes; the cache only saves a query per decision.
 */
import type { Queryable } from "../store/database.js";
import { getFlowVersion } from "../store/flow-versions.js";
import type { FlowVersion } from "../store/model.js";
import { FlowVersionNotFoundError } from "./errors.js";

export class FlowCache {
  #versions = new Map<string, FlowVersion>();
  constructor(private readonly limit = 500) {}

  async get(db: Queryable, id: string): Promise<FlowVersion> {
    const cached = this.#versions.get(id);
    if (cached) return cached;
    const version = await getFlowVersion(db, id);
    if (!version) throw new FlowVersionNotFoundError(id);
    if (this.#versions.size >= this.limit) {
      const oldest = this.#versions.keys().next().value;
      if (oldest !== undefined) this.#versions.delete(oldest);
    }
    this.#versions.set(id, version);
    return version;
  }
}
