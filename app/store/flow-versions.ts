/** Flow versions: stored once per (repository, path, sha), immutable afterwards. */
import type { Queryable } from "./database.js";
import { uuidv7 } from "./ids.js";
import type { FlowVersion } from "./model.js";
import { toFlowVersion } from "./model.js";
import type { DbFlowVersion } from "./rows.js";

/** A version before it is stored: the store gives it its id and creation time. */
export type NewFlowVersion = Omit<FlowVersion, "id" | "createdAt">;

/** Store a version, or return the one already stored for the same repository, path and sha. */
export async function saveFlowVersion(
  db: Queryable,
  version: NewFlowVersion,
): Promise<FlowVersion> {
  const inserted = await db.query<DbFlowVersion>(
    `INSERT INTO flow_versions (id, source_kind, repository, path, sha, name, definition, source)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
     ON CONFLICT (repository, path, sha) DO NOTHING
     RETURNING *`,
    [
      uuidv7(),
      version.sourceKind,
      version.repository,
      version.path,
      version.sha,
      version.name,
      JSON.stringify(version.definition),
      version.source,
    ],
  );
  const row =
    inserted.rows[0] ??
    (
      await db.query<DbFlowVersion>(
        "SELECT * FROM flow_versions WHERE repository = $1 AND path = $2 AND sha = $3",
        [version.repository, version.path, version.sha],
      )
    ).rows[0];
  if (!row)
    throw new Error(`flow version ${version.path}@${version.sha} vanished while being stored`);
  return toFlowVersion(row);
}

export async function getFlowVersion(db: Queryable, id: string): Promise<FlowVersion | undefined> {
  const result = await db.query<DbFlowVersion>("SELECT * FROM flow_versions WHERE id = $1", [id]);
  const row = result.rows[0];
  return row ? toFlowVersion(row) : undefined;
}
