// Child process of store.test.ts: try to open a PGlite data directory another process holds.
import { openPglite } from "../../app/store/pglite.js";

const dataDir = process.argv[2] ?? "";
try {
  const db = await openPglite(dataDir);
  await db.close();
  process.stdout.write(JSON.stringify({ name: "opened" }));
} catch (error: unknown) {
  const e = error as Error & { pid?: number };
  process.stdout.write(JSON.stringify({ name: e.name, pid: e.pid, message: e.message }));
}
