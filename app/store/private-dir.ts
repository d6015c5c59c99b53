/**
 * The embedded database's data directory is private to its owner: the directory and every
 * directory in it 0700, every file 0600. Its files hold everything Baton stores (scripts,
 * inputs, the key webhook secrets derive from, in tables and in the WAL), so no other
 * local user may read or rewrite them.
 *
 * Why a walk and not only the umask: PGlite extracts its initial cluster with the modes
 * of its archive (0666), whatever the umask, and rewrites a few files later with 0644;
 * the files Postgres itself creates are 0600. So the tree is tightened when the database
 * is opened (before PGlite touches it, and again once it has created its files) and when
 * it is closed. Between those, the 0700 directory at the top is what keeps others out.
 * An entry this process may not tighten (another user's) is refused with the command
 * that fixes it; nothing is followed through symbolic links.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync, type Stats } from "node:fs";
import { join } from "node:path";

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** The data directory (or an entry in it) cannot be made private by this process. */
export class DataDirPermissionsError extends Error {
  constructor(
    readonly dataDir: string,
    readonly path: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(
      `The data directory ${dataDir} must be private to its owner, but ${path} ${problem}. ` +
        `As the user who runs Baton (or its owner), run: chown -R "$(id -u):$(id -g)" '${dataDir}' && chmod -R u+rwX,go= '${dataDir}'`,
      options,
    );
    this.name = "DataDirPermissionsError";
  }
}

/**
 * Create `dir` (0700) if needed and tighten everything in it: directories to 0700, files
 * to 0600 (group and other lose every bit). Returns how many entries were tightened.
 */
export function makePrivate(dir: string): number {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const uid = process.getuid?.();
  let tightened = 0;
  const visit = (path: string): void => {
    let stats: Stats;
    try {
      stats = lstatSync(path);
    } catch (error: unknown) {
      // Postgres may remove a file between readdir and lstat (a temporary file).
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    if (stats.isSymbolicLink()) return;
    if (uid !== undefined && uid !== 0 && stats.uid !== uid)
      throw new DataDirPermissionsError(dir, path, `belongs to user ${stats.uid}, not ${uid}`);
    const wanted = stats.isDirectory() ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE;
    const mode = stats.mode & 0o777;
    // Files keep fewer owner bits if they have them; nobody else keeps any.
    if ((mode & 0o077) !== 0 || (stats.isDirectory() && mode !== PRIVATE_DIR_MODE)) {
      try {
        chmodSync(path, stats.isDirectory() ? wanted : mode & wanted);
      } catch (error: unknown) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "ENOENT") return;
        throw new DataDirPermissionsError(
          dir,
          path,
          `is mode ${mode.toString(8)} and cannot be changed (${code ?? "error"})`,
          { cause: error },
        );
      }
      tightened++;
    }
    if (stats.isDirectory()) {
      let names: string[];
      try {
        names = readdirSync(path);
      } catch (error: unknown) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
        throw error;
      }
      for (const name of names) visit(join(path, name));
    }
  };
  visit(dir);
  return tightened;
}
