import m000001 from "./000001.js";

/** Every migration, in order. Append only: the id is the file's number. */
export const MIGRATIONS: readonly { id: number; sql: string }[] = [{ id: 1, sql: m000001 }];
