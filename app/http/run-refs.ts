/**
 * Run references, as people type them: a run id, a unique prefix of one (at least 4
 * characters), `<flow>#<number>`, or `<owner>/<repo>/<flow>#<number>` (run numbers count
 * per repository and flow, so the repository makes a number unique).
 */
import type { Queryable } from "../store/database.js";
import type { Run } from "../store/model.js";
import { findRunsByIdPrefix, findRunsByNumber, getRunById } from "../store/runs.js";
import { getRepository } from "../store/repositories.js";

/** How many runs a prefix or a number may match before the answer is "ambiguous". */
const MAX_CANDIDATES = 5;

/**
 * The runs a reference may mean (none, one, or several when it is ambiguous). With
 * `within`, only runs of that repository (as stored: `owner/repo`, or `local` for the
 * data directory's own runs): a number, an id or a prefix never reaches another
 * repository's run, and `owner/repo/flow#n` naming another repository means nothing.
 */
export async function findRunCandidates(
  db: Queryable,
  ref: string,
  within?: string,
): Promise<Run[]> {
  if (within !== undefined && within !== "local")
    within = (await getRepository(db, within))?.repository ?? within;
  const inScope = (runs: Run[]) =>
    within === undefined ? runs : runs.filter((run) => run.repository === within);
  const inRepository = /^([^/\s#]+)\/([^/\s#]+)\/([^/\s#]+)#(\d+)$/.exec(ref);
  if (inRepository) {
    const [, owner, repo, flow = "", number] = inRepository;
    // GitHub names are case-insensitive; runs keep the spelling the app was given.
    const repository = `${owner}/${repo}`;
    const spelled = (await getRepository(db, repository))?.repository ?? repository;
    if (within !== undefined && spelled.toLowerCase() !== within.toLowerCase()) return [];
    return inScope(await findRunsByNumber(db, flow, Number(number), spelled));
  }
  const numbered = /^([^/\s#]+)#(\d+)$/.exec(ref);
  if (numbered) return findRunsByNumber(db, numbered[1] ?? "", Number(numbered[2]), within);
  if (/^[0-9a-f-]{36}$/i.test(ref)) {
    const run = await getRunById(db, ref.toLowerCase());
    return run ? inScope([run]) : [];
  }
  if (/^[0-9a-f-]{4,}$/i.test(ref))
    return findRunsByIdPrefix(db, ref.toLowerCase(), MAX_CANDIDATES, within);
  return [];
}

/** How a run is named to people: `owner/repo/flow#n`, or `flow#n` for a local run. */
export function runRefOf(run: Pick<Run, "repository" | "flow" | "number">): string {
  return run.repository === "local"
    ? `${run.flow}#${run.number}`
    : `${run.repository}/${run.flow}#${run.number}`;
}
