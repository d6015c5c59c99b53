/**
 * Property tests of the approval policy as the engine applies it: any sequence of
 * approvals, rejections, review dismissals and pushes (in the shape the approvals part
 * submits them) leads to the decision a small reference model of the policy defines,
 * with the same approvers, and the same progress while the step waits.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { TestRun, flow } from "../engine/helpers.js";
import { replay } from "../../app/engine/index.js";
import type { ApprovalVia, NewRunEvent } from "../../app/engine/index.js";

type PermissionLevelOrNone = "none" | "read" | "triage" | "write" | "maintain" | "admin";

interface Policy {
  required: number;
  selfApproval: boolean;
  permission: "read" | "write" | "maintain";
  users: string[] | undefined;
}

type Action =
  | { kind: "approve"; user: string; via: ApprovalVia; staleReview: boolean }
  | { kind: "reject"; user: string; via: ApprovalVia }
  /** A maintainer dismisses the user's review. */
  | { kind: "dismiss"; user: string }
  /** New commits on the pull request. */
  | { kind: "push" };

const RANK: Record<PermissionLevelOrNone, number> = {
  none: 0,
  read: 1,
  triage: 2,
  write: 3,
  maintain: 4,
  admin: 5,
};

/**
 * The reference model, written from the policy's definition (issue 5), not from the
 * engine: an approval counts if it is not a stale review, not self-approval (unless
 * allowed), from someone with the permission and among `users` (when given), and not a
 * second one by the same person; one eligible rejection rejects; a dismissal withdraws
 * the person's review approvals; a push withdraws every approval made before it; the
 * first moment `required` distinct people count, the step is approved.
 */
function modelDecision(
  policy: Policy,
  people: Record<string, PermissionLevelOrNone>,
  actor: string,
  actions: readonly Action[],
): { result: "success" | "failure" | undefined; approvers: string[] } {
  let counted: { user: string; via: ApprovalVia; head: number }[] = [];
  let head = 1;
  const allowed = (user: string) =>
    RANK[people[user] ?? "none"] >= RANK[policy.permission] &&
    (policy.users === undefined || policy.users.includes(user));
  for (const action of actions) {
    switch (action.kind) {
      case "approve": {
        const stale = action.via === "review" && action.staleReview;
        const self = !policy.selfApproval && action.user === actor;
        if (stale || self || !allowed(action.user)) break;
        if (counted.some((c) => c.user === action.user)) break;
        counted.push({ user: action.user, via: action.via, head });
        if (counted.length >= policy.required)
          return { result: "success", approvers: counted.map((c) => c.user).sort() };
        break;
      }
      case "reject":
        if (allowed(action.user)) return { result: "failure", approvers: [action.user] };
        break;
      case "dismiss":
        counted = counted.filter((c) => !(c.user === action.user && c.via === "review"));
        break;
      case "push":
        head += 1;
        counted = counted.filter((c) => c.head === head);
        break;
    }
  }
  return { result: undefined, approvers: counted.map((c) => c.user) };
}

const PEOPLE: Record<string, PermissionLevelOrNone> = {
  starter: "write", // started the run
  alice: "write",
  bob: "admin",
  carol: "read",
  dave: "maintain",
  erin: "none",
};

const policyArb: fc.Arbitrary<Policy> = fc.record({
  required: fc.integer({ min: 1, max: 3 }),
  selfApproval: fc.boolean(),
  permission: fc.constantFrom("read" as const, "write" as const, "maintain" as const),
  users: fc.option(fc.subarray(Object.keys(PEOPLE), { minLength: 1 }), { nil: undefined }),
});

const person = fc.constantFrom(...Object.keys(PEOPLE));
const via = fc.constantFrom<ApprovalVia>("review", "check-run", "comment", "cli");

const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("approve" as const),
      user: person,
      via,
      staleReview: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("reject" as const), user: person, via }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("dismiss" as const), user: person }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("push" as const) }) },
);

/** The events the approvals part appends for an action, given the pull request's head. */
function eventsFor(action: Action, head: number, at: number): NewRunEvent[] {
  const commit = `sha${head}`;
  switch (action.kind) {
    case "approve":
    case "reject": {
      const stale = action.kind === "approve" && action.via === "review" && action.staleReview;
      return [
        {
          type: "approval.submitted",
          at,
          step: "gate",
          user: action.user,
          decision: action.kind,
          via: action.via,
          comment: `${action.kind} by ${action.user}`,
          facts: {
            permission: PEOPLE[action.user] ?? "none",
            teams: [],
            codeowner: false,
            ...(stale ? { stale: true, commit: `sha${head - 1}` } : { commit }),
          },
        },
      ];
    }
    case "dismiss":
      return [
        {
          type: "approval.withdrawn",
          at,
          step: "gate",
          user: action.user,
          via: "review",
          reason: `${action.user}'s review was dismissed`,
          by: "maintainer",
        },
      ];
    case "push":
      return [
        {
          type: "approval.withdrawn",
          at,
          step: "gate",
          keepCommit: `sha${head + 1}`,
          reason: "new commits were pushed",
          by: "pusher",
        },
      ];
  }
}

void describe("approval policy (properties)", () => {
  void it("any sequence of approvals, rejections, dismissals and pushes decides as the policy says", () => {
    fc.assert(
      fc.property(policyArb, fc.array(actionArb, { maxLength: 14 }), (policy, actions) => {
        const definition = flow({
          steps: {
            gate: {
              approval: {
                via: ["review", "check-run", "comment", "cli"],
                required: policy.required,
                "self-approval": policy.selfApproval,
                approvers: {
                  permission: policy.permission,
                  ...(policy.users ? { users: policy.users } : {}),
                },
              },
            },
          },
        });
        const run = new TestRun(definition, { actor: "starter" });
        run.decide(0);
        let head = 1;
        let at = 1;
        for (const action of actions) {
          for (const event of eventsFor(action, head, at)) run.add(event);
          if (action.kind === "push") head += 1;
          run.decide(at);
          at += 1;
        }
        const expected = modelDecision(policy, PEOPLE, "starter", actions);
        const step = run.state.steps.gate;
        assert.ok(step);
        assert.equal(step.result, expected.result, JSON.stringify({ policy, actions }));
        if (expected.result !== undefined) {
          assert.equal(
            step.outputs.decision,
            expected.result === "success" ? "approved" : "rejected",
          );
          assert.equal(step.outputs.approvers, expected.approvers.join(","));
        } else {
          assert.equal(step.status, "waiting");
          assert.equal(
            step.reason,
            `approval (${expected.approvers.length} of ${policy.required})`,
          );
        }
        // The state is a function of the history: replay gives the same.
        assert.deepEqual(replay(definition, run.history), run.state);
      }),
      { numRuns: 400 },
    );
  });
});
