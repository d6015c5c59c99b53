/**
 * The benchmark's side of a runtime child (runtime-child.ts): fork it, start its runtime,
 * sample it, stop it. The runtime is the measured process; whoever waits for runs (the
 * benchmark) is another, so that watching costs the runtime nothing.
 */
import type { ChildProcess } from "node:child_process";
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ChildMessage, Durability, ParentMessage, Sample } from "./runtime-child-protocol.js";

const CHILD = fileURLToPath(new URL("./runtime-child.js", import.meta.url));

export class RuntimeChild {
  readonly #process: ChildProcess;
  #waiters: ((message: ChildMessage) => void)[] = [];
  readonly exited: Promise<number | null>;

  /** `url` carries the application_name the child counts its round trips by. */
  private constructor(url: string, concurrency: number) {
    this.#process = fork(CHILD, [], {
      env: { ...process.env, BENCH_DATABASE_URL: url, BENCH_CONCURRENCY: String(concurrency) },
      // The child's stdout is the benchmark's stderr: under --json, stdout is only JSON.
      stdio: ["ignore", 2, "inherit", "ipc"],
    });
    this.#process.on("message", (message: ChildMessage) => {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const waiter of waiters) waiter(message);
    });
    this.exited = new Promise((resolve) => this.#process.once("exit", (code) => resolve(code)));
  }

  /** Fork a child and wait until it is connected; its runtime is not started yet. */
  static async fork(
    url: string,
    concurrency: number,
  ): Promise<{ child: RuntimeChild; durability: Durability }> {
    const child = new RuntimeChild(url, concurrency);
    const ready = await child.#next("ready");
    if (ready.type !== "ready") throw new Error("unreachable");
    return { child, durability: ready.durability };
  }

  /** Start the runtime; returns the child's Date.now() at its start. */
  async start(): Promise<number> {
    const started = this.#next("started");
    this.#send({ type: "start" });
    const message = await started;
    return message.type === "started" ? message.at : Number.NaN;
  }

  async sample(): Promise<Sample> {
    const answer = this.#next("sample");
    this.#send({ type: "sample" });
    return (await answer) as Sample;
  }

  /** Wait until the runtime sends nothing for `quietMs` (its last tasks are done). */
  async quiescent(quietMs = 150, timeoutMs = 10_000): Promise<Sample> {
    const deadline = Date.now() + timeoutMs;
    let last = await this.sample();
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, quietMs));
      const now = await this.sample();
      if (now.counts.roundTrips === last.counts.roundTrips || Date.now() > deadline) return now;
      last = now;
    }
  }

  async stop(): Promise<void> {
    if (this.#process.exitCode !== null || this.#process.signalCode !== null) return;
    this.#send({ type: "stop" });
    const timer = setTimeout(() => this.#process.kill("SIGKILL"), 15_000);
    await this.exited;
    clearTimeout(timer);
  }

  #next(type: ChildMessage["type"]): Promise<ChildMessage> {
    return new Promise((resolve, reject) => {
      const onMessage = (message: ChildMessage) => {
        if (message.type === type) resolve(message);
        else this.#waiters.push(onMessage);
      };
      this.#waiters.push(onMessage);
      void this.exited.then((code) =>
        reject(new Error(`the runtime child exited (code ${code}) before "${type}"`)),
      );
    });
  }

  #send(message: ParentMessage): void {
    this.#process.send(message);
  }
}

export function describeDurability(d: Durability): string {
  return `synchronous_commit=${d.synchronousCommit}, fsync=${d.fsync}`;
}
