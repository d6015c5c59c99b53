import m000001 from "./000001.js";
import m000002 from "./000002.js";
import m000003 from "./000003.js";
import m000004 from "./000004.js";
import m000005 from "./000005.js";
import m000006 from "./000006.js";
import m000007 from "./000007.js";
import m000008 from "./000008.js";
import m000009 from "./000009.js";
import m000010 from "./000010.js";
import m000011 from "./000011.js";
import m000012 from "./000012.js";
import m000013 from "./000013.js";

/** Every migration, in order. Append only: the id is the file's number. */
export const MIGRATIONS: readonly { id: number; sql: string }[] = [
  { id: 1, sql: m000001 },
  { id: 2, sql: m000002 },
  { id: 3, sql: m000003 },
  { id: 4, sql: m000004 },
  { id: 5, sql: m000005 },
  { id: 6, sql: m000006 },
  { id: 7, sql: m000007 },
  { id: 8, sql: m000008 },
  { id: 9, sql: m000009 },
  { id: 10, sql: m000010 },
  { id: 11, sql: m000011 },
  { id: 12, sql: m000012 },
  { id: 13, sql: m000013 },
];
