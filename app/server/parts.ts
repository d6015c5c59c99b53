/**
 * The parts of the GitHub side, in the order their webhook handlers run: a push first
 * makes the new flows live, then starts the runs it triggers; check runs show the runs;
 * approvals come after both (a deployment gate reads the run the triggers part started in
 * the same delivery); runners take steps with `runs-on`; workflows dispatch `workflow`
 * steps to Actions and follow their runs; the run API serves people and the CLI.
 */
import { apiPart } from "../http/api-part.js";
import type { RunnersPartOptions } from "../runners/runners-part.js";
import { runnersPart } from "../runners/runners-part.js";
import type { ApprovalsOptions } from "../github/approvals/index.js";
import { approvalsPart } from "../github/approvals/index.js";
import type { CheckRunsOptions } from "../github/check-runs/index.js";
import { checkRunsPart } from "../github/check-runs/index.js";
import type { FlowsPartOptions } from "../github/flows/flows-part.js";
import { flowsPart } from "../github/flows/flows-part.js";
import type { GitHubApp, GitHubAppPart } from "../github/github-app.js";
import type { TriggersOptions } from "../github/triggers/index.js";
import { triggersPart } from "../github/triggers/index.js";
import type { WorkflowsOptions } from "../github/workflows/index.js";
import { workflowsPart } from "../github/workflows/index.js";

export interface PartsOptions {
  flows?: FlowsPartOptions;
  triggers?: TriggersOptions;
  checkRuns?: CheckRunsOptions;
  approvals?: ApprovalsOptions;
  runners?: RunnersPartOptions;
  workflows?: WorkflowsOptions;
}

export function defaultParts(app: GitHubApp, options: PartsOptions = {}): GitHubAppPart[] {
  return [
    flowsPart(app, options.flows),
    triggersPart(app, options.triggers),
    checkRunsPart(app, options.checkRuns),
    approvalsPart(app, options.approvals),
    // Steps with `runs-on` (and agent steps) go to self-hosted runners; the protocol's routes.
    runnersPart(app, options.runners),
    // `workflow` steps on Actions; its step-token routes go before the run API's.
    workflowsPart(app, options.workflows),
    apiPart(app),
  ];
}
