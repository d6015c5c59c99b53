import m000001 from "./000001.js";
import m000002 from "./000002.js";
import m000003 from "./000003.js";

/** Every migration, in order. Append only: the id is the file's number. */
export const MIGRATIONS: readonly { id: number; sql: string }[] = [
  { id: 1, sql: m000001 },
  { id: 2, sql: m000002 },
  { id: 3, sql: m000003 },
];
