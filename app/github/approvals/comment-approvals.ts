/**
 * Approvals by comment (`via: comment`): `/baton approve [step] [comment]` and
 * `/baton reject [step] [comment]` on the run's pull request or issue (or the pull
 * request an approval step's `approval.pull-request` names).
 *
 * The command goes to every approval step waiting there (only those named `step`, when
 * given; when several different steps wait and none is named, the reply asks which). The
 * commenter's facts are asked of GitHub now; the engine judges the decision and records
 * it either way. Every command is answered with a reply comment: what was counted, or
 * why not (the permission GitHub reported, not in a team, not a code owner,
 * self-approval, already decided, this step does not take comments).
 */
import type { BatonCommand } from "../baton-command.js";
import { parseBatonCommand } from "../baton-command.js";
import type { ApproverFacts } from "../../engine/types.js";
import type { EventHandler, Write } from "../github-app.js";
import { approverFacts } from "./approver-facts.js";
import type { WaitingApproval } from "./waiting-approvals.js";
import { replyOn, runName, submitDecision, waitingApprovalsAbout } from "./waiting-approvals.js";

type Payload = Record<string, unknown>;

function object(value: unknown): Payload | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Payload)
    : undefined;
}

export const handleApprovalComment: EventHandler = async (event, app) => {
  const comment = object(event.payload.comment);
  const body = comment?.body;
  const user = object(comment?.user)?.login;
  const number = object(event.payload.issue)?.number;
  const repository = object(event.payload.repository)?.full_name;
  const senderType = object(event.payload.sender)?.type;
  if (
    typeof body !== "string" ||
    typeof user !== "string" ||
    typeof number !== "number" ||
    typeof repository !== "string" ||
    event.installationId === undefined ||
    senderType === "Bot"
  )
    return undefined;
  const parsed = parseBatonCommand(body);
  if (parsed === undefined) return undefined;
  const where = { installationId: event.installationId, repository, number };
  const reply = (text: string, key = `comment/${event.id}`) => ({
    text: `@${user} ${text}`,
    key,
  });
  const answer =
    (replies: { text: string; key: string }[]): Write =>
    async (tx) => {
      for (const r of replies) await replyOn(tx, where, r.text, r.key);
    };
  if (!parsed.ok) {
    // Only mistakes in approve/reject commands are this part's to answer.
    const line = body.split(/\r?\n/).find((l) => /^\s*\/baton\s+(approve|reject)(\s|$)/.test(l));
    return line === undefined ? undefined : answer([reply(parsed.error)]);
  }
  const command: BatonCommand = parsed.command;
  if (command.kind !== "approve" && command.kind !== "reject") return undefined;
  const verb = command.kind;

  const all = await waitingApprovalsAbout(app, repository, number);
  const targets = command.step === undefined ? all : all.filter((w) => w.step === command.step);
  if (targets.length === 0) {
    const named = command.step === undefined ? "" : ` \`${command.step}\``;
    const others =
      command.step !== undefined && all.length > 0 ? ` Waiting here: ${describe(all)}.` : "";
    return answer([
      reply(
        `no run on #${number} waits for an approval${named} now (it may have been decided ` +
          `already, or not requested yet).${others}`,
      ),
    ]);
  }
  const steps = new Set(targets.map((t) => t.step));
  if (command.step === undefined && steps.size > 1) {
    return answer([
      reply(
        `several approvals wait here: ${describe(targets)}. Name the step: ` +
          `\`/baton ${verb} <step> [comment]\`.`,
      ),
    ]);
  }
  const judged: { target: WaitingApproval; facts: ApproverFacts }[] = [];
  for (const target of targets) {
    judged.push({
      target,
      facts: await approverFacts(app, target.run, user, target.spec, { step: target.step }),
    });
  }
  return async (tx) => {
    for (const { target, facts } of judged) {
      const outcome = await submitDecision(tx, app, target, {
        user,
        decision: verb,
        via: "comment",
        ...(command.comment !== undefined ? { comment: command.comment } : {}),
        facts,
      });
      const what = `\`${target.step}\` of ${runName(target.run)}`;
      const text =
        outcome.kind === "not-waiting"
          ? `your ${verb === "approve" ? "approval" : "rejection"} of ${what} was not counted: it was already decided (${outcome.message})`
          : outcome.evaluated?.counted
            ? `${verb === "approve" ? "approved" : "rejected"} ${what} (${facts.permission} permission).`
            : `your ${verb === "approve" ? "approval" : "rejection"} of ${what} was not counted: ${outcome.evaluated?.reason ?? "the approval policy did not count it"}.`;
      await replyOn(
        tx,
        where,
        `@${user} ${text}`,
        `comment/${event.id}/${target.run.id}/${target.step}`,
      );
    }
  };
};

function describe(waiting: readonly WaitingApproval[]): string {
  return waiting.map((w) => `\`${w.step}\` of ${runName(w.run)}`).join(", ");
}
