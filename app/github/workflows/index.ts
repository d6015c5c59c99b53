/**
 * `workflow` steps as GitHub Actions workflow runs (README.md in this folder): dispatch,
 * follow the run through its events, cancel it, and take its outputs from the Baton action.
 */
import type { GitHubApp, GitHubAppPart } from "../github-app.js";
import type { CancelOptions } from "./cancel-workflow.js";
import {
  CANCEL_WORKFLOW_RUN,
  cancelStepHandler,
  cancelWorkflowRunHandler,
} from "./cancel-workflow.js";
import { workflowDispatchHandlers } from "./dispatch-workflow.js";
import { stepTokenRoute } from "./step-token-route.js";
import { workflowJobHandler, workflowRunHandler } from "./workflow-events.js";

export interface WorkflowsOptions extends CancelOptions {
  /** The key step tokens derive from. (Default: BATON_SECRET_KEY, else the stored key) */
  secretKey?: string;
}

export function workflowsPart(app: GitHubApp, options: WorkflowsOptions = {}): GitHubAppPart {
  const secret = options.secretKey !== undefined ? { secretKey: options.secretKey } : {};
  const dispatch = workflowDispatchHandlers(app, secret);
  return {
    name: "workflows",
    events: {
      workflow_run: workflowRunHandler(secret),
      workflow_job: workflowJobHandler(),
    },
    tasks: {
      execute: dispatch.execute,
      compensate: dispatch.compensate,
      cancel: cancelStepHandler(app),
      [CANCEL_WORKFLOW_RUN]: cancelWorkflowRunHandler(app, options),
    },
    routes: [stepTokenRoute(app, secret)],
  };
}
