/**
 * Buffers what a step prints and stores it in bounded chunks: flushed every 200 ms, or as
 * soon as 8 KiB are waiting, so that `baton logs -f` follows a step live without one
 * insert per line. A failed flush is logged, never fatal: logs are not the run's truth.
 */
import type { LogStream } from "../runner/executor.js";
import type { Queryable } from "../store/database.js";
import type { NewLogChunk } from "../store/step-logs.js";
import { appendLogs } from "../store/step-logs.js";
import type { Logger } from "./log.js";

/** The largest chunk stored. (Also the size that triggers a flush.) */
export const LOG_CHUNK_BYTES = 8 * 1024;
export const LOG_FLUSH_MS = 200;

export class StepLogWriter {
  #pending: NewLogChunk[] = [];
  #pendingBytes = 0;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Queryable,
    private readonly target: { runId: string; step: string; attempt: number },
    private readonly log: Logger,
  ) {}

  write(stream: LogStream, text: string): void {
    for (let start = 0; start < text.length; start += LOG_CHUNK_BYTES) {
      const chunk = text.slice(start, start + LOG_CHUNK_BYTES);
      // Merge with the previous chunk of the same stream while it stays small.
      const last = this.#pending.at(-1);
      if (last && last.stream === stream && last.chunk.length + chunk.length <= LOG_CHUNK_BYTES) {
        last.chunk += chunk;
      } else {
        this.#pending.push({ ...this.target, stream, chunk, at: Date.now() });
      }
      this.#pendingBytes += chunk.length;
    }
    if (this.#pendingBytes >= LOG_CHUNK_BYTES) this.#flushSoon(0);
    else this.#flushSoon(LOG_FLUSH_MS);
  }

  #flushSoon(delay: number): void {
    if (this.#timer && delay > 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, delay);
  }

  /** Store everything written so far. */
  flush(): Promise<void> {
    const chunks = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#flushing = this.#flushing.then(async () => {
      if (chunks.length === 0) return;
      try {
        await appendLogs(this.db, chunks);
      } catch (error: unknown) {
        this.log.warn("could not store step output", { ...this.target, error });
      }
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
