/**
 * The fake's git object store: blobs, trees and commits with git's own SHA-1s, so that
 * SHAs a test sees are shaped like GitHub's and the same content has the same SHA.
 */
import { createHash } from "node:crypto";

export interface Blob {
  type: "blob";
  sha: string;
  content: Buffer;
}
export interface TreeEntry {
  name: string;
  mode: "100644" | "040000";
  type: "blob" | "tree";
  sha: string;
}
export interface Tree {
  type: "tree";
  sha: string;
  entries: TreeEntry[];
}
export interface Commit {
  type: "commit";
  sha: string;
  tree: string;
  parents: string[];
  message: string;
}
export type GitObject = Blob | Tree | Commit;

function hashObject(type: string, body: Buffer): string {
  return createHash("sha1")
    .update(Buffer.concat([Buffer.from(`${type} ${body.length}\0`), body]))
    .digest("hex");
}

export class GitObjects {
  readonly #objects = new Map<string, GitObject>();
  /** Each object's body as git stores it (after the "<type> <size>\0" header). */
  readonly #bodies = new Map<string, Buffer>();

  /** Every object, for serving them over git's own protocol (git-http.ts). */
  all(): GitObject[] {
    return [...this.#objects.values()];
  }

  /** An object's body as git stores it. */
  raw(sha: string): Buffer {
    const body = this.#bodies.get(sha);
    if (!body) throw new Error(`no git object ${sha}`);
    return body;
  }

  get(sha: string): GitObject | undefined {
    return this.#objects.get(sha);
  }

  blob(content: string | Buffer): Blob {
    const bytes = typeof content === "string" ? Buffer.from(content) : content;
    const blob: Blob = { type: "blob", sha: hashObject("blob", bytes), content: bytes };
    this.#objects.set(blob.sha, blob);
    this.#bodies.set(blob.sha, bytes);
    return blob;
  }

  /** A tree from a flat map of file paths to blob SHAs (directories are implied). */
  treeFromFiles(files: ReadonlyMap<string, string>): Tree {
    const here = new Map<string, string>();
    const below = new Map<string, Map<string, string>>();
    for (const [path, sha] of files) {
      const slash = path.indexOf("/");
      if (slash === -1) {
        here.set(path, sha);
      } else {
        const dir = path.slice(0, slash);
        const sub = below.get(dir) ?? new Map<string, string>();
        sub.set(path.slice(slash + 1), sha);
        below.set(dir, sub);
      }
    }
    const entries: TreeEntry[] = [
      ...[...here].map(([name, sha]): TreeEntry => ({ name, mode: "100644", type: "blob", sha })),
      ...[...below].map(([name, sub]): TreeEntry => ({
        name,
        mode: "040000",
        type: "tree",
        sha: this.treeFromFiles(sub).sha,
      })),
    ];
    // git's order: by name, with a directory compared as if its name ended in "/".
    const key = (e: TreeEntry) => (e.type === "tree" ? `${e.name}/` : e.name);
    entries.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
    const body = Buffer.concat(
      entries.map((e) =>
        Buffer.concat([
          Buffer.from(`${e.mode === "040000" ? "40000" : e.mode} ${e.name}\0`),
          Buffer.from(e.sha, "hex"),
        ]),
      ),
    );
    const tree: Tree = { type: "tree", sha: hashObject("tree", body), entries };
    this.#objects.set(tree.sha, tree);
    this.#bodies.set(tree.sha, body);
    return tree;
  }

  commit(tree: string, parents: string[], message: string): Commit {
    const body = Buffer.from(
      [
        `tree ${tree}`,
        ...parents.map((p) => `parent ${p}`),
        "author Fake GitHub <fake@example.com> 1700000000 +0000",
        "committer Fake GitHub <fake@example.com> 1700000000 +0000",
        "",
        message,
      ].join("\n"),
    );
    const commit: Commit = {
      type: "commit",
      sha: hashObject("commit", body),
      tree,
      parents,
      message,
    };
    this.#objects.set(commit.sha, commit);
    this.#bodies.set(commit.sha, body);
    return commit;
  }

  /** Every file under `treeSha`, path → blob SHA. */
  files(treeSha: string, prefix = ""): Map<string, string> {
    const files = new Map<string, string>();
    const tree = this.get(treeSha);
    if (tree?.type !== "tree") return files;
    for (const entry of tree.entries) {
      const path = prefix + entry.name;
      if (entry.type === "blob") files.set(path, entry.sha);
      else for (const [p, sha] of this.files(entry.sha, `${path}/`)) files.set(p, sha);
    }
    return files;
  }

  /** Every entry under `treeSha`, depth first as GitHub lists a recursive tree. */
  walk(treeSha: string, prefix = ""): (TreeEntry & { path: string })[] {
    const tree = this.get(treeSha);
    if (tree?.type !== "tree") return [];
    return tree.entries.flatMap((entry) => {
      const path = prefix + entry.name;
      const self = { ...entry, path };
      return entry.type === "tree" ? [self, ...this.walk(entry.sha, `${path}/`)] : [self];
    });
  }
}
