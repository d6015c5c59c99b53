/**
 * The GitHub app's `request-approval` task (it replaces the runtime's local one, which
 * only logs): an approval step of a repository's run began waiting, or its `reminder`
 * moment came.
 *
 * - When the step names a pull request (`approval.pull-request`, evaluated by the
 *   engine), it is recorded, so that its reviews and pushes find the step.
 * - A comment on the pull request (or the run's pull request or issue) tells approvers:
 *   on the first request when the step takes reviews or comments (buttons show on the
 *   check run by themselves), and always for the reminder, with the moment the approval
 *   times out and what happens then.
 *
 * The comment goes through the outbox keyed by the effect's key, so a repeated task
 * comments once.
 */
import type { ApprovalSpec } from "../../../flows-schema/schema.js";
import type { RequestApproval, RunEvent } from "../../engine/types.js";
import { finishTask, type TaskHandler } from "../../runtime/index.js";
import { loadEvents } from "../../store/events.js";
import { getFlowVersion } from "../../store/flow-versions.js";
import { getRunById } from "../../store/runs.js";
import type { GitHubApp } from "../github-app.js";
import type { GitHubRun } from "./approver-facts.js";
import { recordApprovalRequest } from "../../store/approval-runs.js";
import { replyOn, runName } from "./waiting-approvals.js";

export function requestApprovalHandler(app: GitHubApp): TaskHandler {
  return async (ctx, task) => {
    const effect = task.payload as unknown as RequestApproval;
    const run = task.runId ? await getRunById(ctx.db, task.runId) : undefined;
    const version = run ? await getFlowVersion(ctx.db, run.flowVersionId) : undefined;
    const spec = version?.definition.steps[effect.step]?.approval;
    const step = run?.state?.steps[effect.step];
    if (!run?.github || !spec || step?.status !== "waiting" || step.attempt !== effect.attempt) {
      // A local run (approvers use `baton approve`), or the step no longer waits.
      ctx.log.info(effect.reminder ? "approval reminder" : "approval requested", {
        runId: task.runId,
        step: effect.step,
        attempt: effect.attempt,
      });
      await finishTask(ctx, task, () => Promise.resolve());
      return;
    }
    const githubRun = run as GitHubRun;
    let named: number | undefined;
    let problem: string | undefined;
    if (effect.pullRequest !== undefined) {
      const match = /^#?(\d+)$/.exec(effect.pullRequest.trim());
      if (match) named = Number(match[1]);
      else
        problem =
          `\`approval.pull-request\` of \`${effect.step}\` gave "${effect.pullRequest}", not a ` +
          "pull request number: reviews cannot approve this step.";
    }
    const deadline = waitingUntil(await loadEvents(ctx.db, run.id), effect.step);
    const place = named ?? githubRun.github.pullRequest ?? githubRun.github.issue;
    const announce =
      effect.reminder === true ||
      problem !== undefined ||
      spec.via.includes("review") ||
      spec.via.includes("comment");
    await finishTask(ctx, task, async (tx) => {
      if (named !== undefined) {
        await recordApprovalRequest(tx, {
          runId: run.id,
          step: effect.step,
          attempt: effect.attempt,
          repository: run.repository,
          pullRequest: named,
          at: new Date(app.now()),
        });
      }
      if (place === undefined || !announce) return;
      const text = effect.reminder
        ? reminderText(githubRun, effect.step, spec, step.reason, deadline)
        : requestText(githubRun, effect.step, spec, named, deadline, problem);
      await replyOn(
        tx,
        {
          installationId: githubRun.github.installationId,
          repository: run.repository,
          number: place,
        },
        text,
        `${effect.key}/comment`,
      );
    });
  };
}

function waitingUntil(events: readonly RunEvent[], step: string): number | undefined {
  for (let i = events.length - 1; i >= 0; i -= 1) {
    const event = events[i];
    if (event?.type === "step.waiting" && event.step === step) return event.until;
  }
  return undefined;
}

/** "2 of @alice, members of acme/release or code owners, with write permission". */
export function describePolicy(spec: ApprovalSpec): string {
  const who: string[] = [];
  if (spec.approvers.users?.length) who.push(spec.approvers.users.map((u) => `@${u}`).join(", "));
  if (spec.approvers.teams?.length) who.push(`members of ${spec.approvers.teams.join(", ")}`);
  if (spec.approvers.codeowners) who.push("code owners");
  const people = who.length > 0 ? who.join(" or ") : "anyone";
  return (
    `${spec.required} approval${spec.required === 1 ? "" : "s"} from ${people} with ` +
    `${spec.approvers.permission} permission` +
    (spec["self-approval"] ? "" : ", not from whoever started the run")
  );
}

function howTo(spec: ApprovalSpec, step: string, pull: number | undefined): string {
  const ways: string[] = [];
  if (spec.via.includes("review"))
    ways.push(`approve this pull request${pull !== undefined ? ` (#${pull})` : ""} in a review`);
  if (spec.via.includes("comment")) ways.push(`comment \`/baton approve ${step}\``);
  if (spec.via.includes("check-run")) ways.push("use the buttons of the run's check run");
  if (spec.via.includes("cli")) ways.push("run `baton approve`");
  return ways.join(", or ");
}

function timing(spec: ApprovalSpec, deadline: number | undefined): string {
  if (deadline === undefined) return "";
  const when = new Date(deadline).toISOString().replace(/\.\d{3}Z$/, "Z");
  return ` It times out at ${when}; then it is ${
    spec["on-timeout"] === "approve"
      ? "approved"
      : spec["on-timeout"] === "reject"
        ? "rejected"
        : "failed"
  }.`;
}

function requestText(
  run: GitHubRun,
  step: string,
  spec: ApprovalSpec,
  pull: number | undefined,
  deadline: number | undefined,
  problem: string | undefined,
): string {
  return (
    `\`${step}\` of ${runName(run)} waits for approval: ${describePolicy(spec)}. ` +
    `To decide, ${howTo(spec, step, pull ?? run.github.pullRequest)}.` +
    timing(spec, deadline) +
    (problem !== undefined ? `\n\n${problem}` : "")
  );
}

function reminderText(
  run: GitHubRun,
  step: string,
  spec: ApprovalSpec,
  progress: string | undefined,
  deadline: number | undefined,
): string {
  // The step's progress, "approval (1 of 2); reminder sent": the counts only.
  const count = progress === undefined ? null : /(\d+) of (\d+)/.exec(progress);
  return (
    `Reminder: \`${step}\` of ${runName(run)} still waits for approval` +
    `${count ? ` (${count[1]} of ${count[2]})` : ""}: ` +
    `${describePolicy(spec)}.` +
    timing(spec, deadline)
  );
}
