/**
 * Follows a run until it ends: live history lines for people, one JSON document at the end
 * for machines. The exit code says how the run ended (0 success, 1 failure or cancelled).
 */
import type { RunView } from "../http/api.js";
import type { Session } from "./connect.js";
import type { CliIo } from "./io.js";
import { EXIT } from "./io.js";
import { renderHistoryLine, renderSteps, runStatusWord, styleFor } from "./render-run.js";
import { TERMINAL_RUN_STATUSES } from "../engine/types.js";

/** How often to look at the run. Local reads are cheap; a remote server is asked less often. */
const POLL_MS = { local: 100, remote: 500 };

export async function followRun(
  session: Session,
  io: CliIo,
  runId: string,
  options: { json: boolean; minAttempt?: number },
): Promise<number> {
  const style = styleFor(io.stdout, io.env);
  let printed = 0;
  let run: RunView;
  for (;;) {
    run = await session.api.getRun(runId);
    if (!options.json) {
      for (const event of run.events.slice(printed)) {
        const line = renderHistoryLine(event, run.state.createdAt);
        if (line !== undefined) io.stdout.write(`${line}\n`);
      }
      printed = run.events.length;
    }
    const ended =
      TERMINAL_RUN_STATUSES.includes(run.state.status) &&
      run.state.runAttempt >= (options.minAttempt ?? 1);
    if (ended) break;
    await new Promise((resolve) =>
      setTimeout(resolve, session.hosted ? POLL_MS.local : POLL_MS.remote),
    );
  }
  if (options.json) {
    io.stdout.write(`${JSON.stringify(run, null, 2)}\n`);
  } else {
    io.stdout.write(`\n${renderSteps(run.state, style)}\n\n`);
    const outputs = Object.entries(run.state.outputs);
    if (outputs.length > 0)
      io.stdout.write(`${outputs.map(([k, v]) => `${k}=${v}`).join("\n")}\n\n`);
    io.stdout.write(
      `${run.flow} #${run.number} ${runStatusWord(run.state.status, style)}  (baton show ${run.id.slice(0, 8)})\n`,
    );
  }
  return run.state.status === "success" ? EXIT.ok : EXIT.failure;
}
