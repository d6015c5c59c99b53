/**
 * The `Database` on a Postgres server, through a `pg` Pool. Used when DATABASE_URL is set;
 * many Baton processes may share one server (all coordination goes through it).
 */
import pg from "pg";
import type { Database, NotifyChannel, QueryResult, Transaction } from "./database.js";
import { CHANNELS, runWatchLockKey } from "./database.js";
import { Mutex } from "./mutex.js";

/** int8 (bigint) as a JS number: our counters and sequences stay far below 2^53. */
const parseInt8 = (value: string): number => Number(value);
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary"): unknown =>
    oid === 20
      ? parseInt8
      : (pg.types.getTypeParser(oid, format) as unknown)) as typeof pg.types.getTypeParser,
};

/**
 * Statements with parameters are prepared once per connection, by name, and only bound
 * and executed after: an unnamed statement is parsed and planned again on every call
 * (0.5 ms of planning per step was measured). The names are per text; past `limit`
 * distinct texts (SQL built from varying parts) the rest stay unnamed.
 */
class StatementNames {
  #names = new Map<string, string>();
  constructor(private readonly limit = 500) {}

  config(sql: string, params: readonly unknown[] | undefined): pg.QueryConfig | string {
    if (params === undefined || params.length === 0) return sql;
    let name = this.#names.get(sql);
    if (name === undefined) {
      if (this.#names.size >= this.limit) return { text: sql, values: params as unknown[] };
      name = `baton_${this.#names.size + 1}`;
      this.#names.set(sql, name);
    }
    return { name, text: sql, values: params as unknown[] };
  }
}

export interface PostgresOptions {
  connectionString: string;
  /** The most connections this process opens. (Default: 10) */
  max?: number;
  /** Called when the LISTEN connection fails; it reconnects by itself. */
  onError?: (error: unknown) => void;
}

export function openPostgres(options: PostgresOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    types,
  });
  // An idle client that dies (server restart) must not crash the process; the pool
  // replaces it on the next checkout.
  pool.on("error", (error) => options.onError?.(error));
  const listener = new Listener(options.connectionString, options.onError);
  const url = new URL(options.connectionString);
  const names = new StatementNames();
  return {
    kind: "postgres",
    description: `postgres ${url.host}${url.pathname}`,
    async query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const result = await pool.query(names.config(sql, params));
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
    },
    async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: unknown;
      try {
        await client.query("BEGIN");
        // Notifications are sent with the COMMIT, in one round trip (NOTIFY is delivered
        // at commit anyway): `SELECT pg_notify(…); COMMIT` as one simple query.
        const notifications = new Set<string>();
        const tx: Transaction = {
          kind: "postgres",
          async query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
            const result = await client.query(names.config(sql, params));
            return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
          },
          async exec(sql: string): Promise<void> {
            await client.query(sql);
          },
          notify(channel: NotifyChannel, payload: string): Promise<void> {
            notifications.add(
              `SELECT pg_notify(${client.escapeLiteral(channel)}, ${client.escapeLiteral(payload)});`,
            );
            return Promise.resolve();
          },
        };
        const value = await fn(tx);
        await client.query(`${[...notifications].join(" ")} COMMIT`);
        return value;
      } catch (error: unknown) {
        try {
          await client.query("ROLLBACK");
        } catch (rollbackError: unknown) {
          // The connection is unusable: destroy it rather than return it to the pool.
          broken = rollbackError;
        }
        throw error;
      } finally {
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    listen: (channel, onNotify) => listener.listen(channel, onNotify),
    async watchRun(runId, onChange) {
      const unlisten = await listener.listen(CHANNELS.runs, (payload) => {
        if (payload === "" || payload === runId) onChange();
      });
      try {
        await listener.watch(runId);
      } catch (error: unknown) {
        await unlisten();
        throw error;
      }
      return async () => {
        await listener.unwatch(runId);
        await unlisten();
      };
    },
    async close(): Promise<void> {
      await listener.close();
      await pool.end();
    },
  };
}

/**
 * One dedicated connection per process for LISTEN. When it drops it reconnects after a
 * second and tells every handler (with an empty payload), because notifications sent
 * while it was down are lost: handlers re-read the database.
 */
class Listener {
  #client: pg.Client | undefined;
  #connecting: Promise<pg.Client> | undefined;
  #handlers = new Map<string, Set<(payload: string) => void>>();
  #closed = false;
  #retry: NodeJS.Timeout | undefined;
  /** Runs watched (see Database.watchRun), with how many watchers each. */
  #watched = new Map<string, number>();
  /** A pg client takes one query at a time: LISTENs and watches asked at once take turns. */
  readonly #turns = new Mutex();

  constructor(
    private readonly connectionString: string,
    private readonly onError?: (error: unknown) => void,
  ) {}

  async listen(
    channel: NotifyChannel,
    onNotify: (payload: string) => void,
  ): Promise<() => Promise<void>> {
    let handlers = this.#handlers.get(channel);
    const first = handlers === undefined;
    if (!handlers) {
      handlers = new Set();
      this.#handlers.set(channel, handlers);
    }
    handlers.add(onNotify);
    const client = await this.#connect();
    // Channel names are our constants (CHANNELS), never user input: LISTEN takes no parameters.
    if (first) await this.#turns.run(() => client.query(`LISTEN ${channel}`));
    return async () => {
      handlers.delete(onNotify);
      if (handlers.size === 0 && this.#handlers.get(channel) === handlers) {
        this.#handlers.delete(channel);
        const current = this.#client;
        if (current && !this.#closed)
          await this.#turns.run(() => current.query(`UNLISTEN ${channel}`)).catch(() => undefined);
      }
    };
  }

  /** Register a watch of `runId`: a shared advisory lock held by this session. */
  async watch(runId: string): Promise<void> {
    const count = this.#watched.get(runId) ?? 0;
    this.#watched.set(runId, count + 1);
    if (count > 0) return;
    try {
      const client = await this.#connect();
      await this.#turns.run(() =>
        client.query("SELECT pg_advisory_lock_shared(hashtextextended($1, 0))", [
          runWatchLockKey(runId),
        ]),
      );
    } catch (error: unknown) {
      this.#watched.delete(runId);
      throw error;
    }
  }

  async unwatch(runId: string): Promise<void> {
    const count = this.#watched.get(runId) ?? 0;
    if (count > 1) {
      this.#watched.set(runId, count - 1);
      return;
    }
    this.#watched.delete(runId);
    const current = this.#client;
    if (current && !this.#closed)
      await this.#turns
        .run(() =>
          current.query("SELECT pg_advisory_unlock_shared(hashtextextended($1, 0))", [
            runWatchLockKey(runId),
          ]),
        )
        .catch(() => undefined);
  }

  #connect(): Promise<pg.Client> {
    if (this.#client) return Promise.resolve(this.#client);
    this.#connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.connectionString, types });
      client.on("notification", (message) => {
        for (const handler of this.#handlers.get(message.channel) ?? [])
          handler(message.payload ?? "");
      });
      client.on("error", (error) => this.#lost(client, error));
      client.on("end", () => this.#lost(client, new Error("LISTEN connection ended")));
      await client.connect();
      for (const channel of this.#handlers.keys()) await client.query(`LISTEN ${channel}`);
      // A new session holds no locks: register the watches again.
      for (const runId of this.#watched.keys())
        await client.query("SELECT pg_advisory_lock_shared(hashtextextended($1, 0))", [
          runWatchLockKey(runId),
        ]);
      this.#client = client;
      return client;
    })().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  #lost(client: pg.Client, error: unknown): void {
    if (this.#client !== client || this.#closed) return;
    this.#client = undefined;
    this.onError?.(error);
    client.end().catch(() => undefined);
    this.#reconnectSoon();
  }

  #reconnectSoon(): void {
    if (this.#closed) return;
    this.#retry = setTimeout(() => {
      this.#connect().then(
        () => {
          for (const handlers of this.#handlers.values())
            for (const handler of handlers) handler("");
        },
        (error: unknown) => {
          this.onError?.(error);
          this.#reconnectSoon();
        },
      );
    }, 1000);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    const client =
      this.#client ??
      (this.#connecting ? await this.#connecting.catch(() => undefined) : undefined);
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }
}
