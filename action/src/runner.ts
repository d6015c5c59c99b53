/**
 * The action's entry logic: read the inputs GitHub passes (INPUT_* variables), do the
 * work, and turn any failure into `core.setFailed` with what to do. This is the one place
 * that catches.
 */
import * as core from "@actions/core";
import { readActionInput } from "./action-input.js";
import { describeFailure } from "./describe-failure.js";
import { main } from "./main.js";

export async function runAction(): Promise<void> {
  try {
    const input = readActionInput({
      input: (name, options) => core.getInput(name, { trimWhitespace: options?.trim ?? true }),
      env: process.env,
      cwd: process.cwd(),
      mask: (secret) => core.setSecret(secret),
    });
    await main(
      input,
      {
        info: (message) => core.info(message),
        warning: (message) => core.warning(message),
        setOutput: (name, value) => core.setOutput(name, value),
      },
      { idToken: (audience) => core.getIDToken(audience) },
    );
  } catch (error: unknown) {
    core.setFailed(describeFailure(error));
  }
}
