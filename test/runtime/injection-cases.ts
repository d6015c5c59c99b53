/**
 * Shared by the injection tests (local shell, runners, SSH, the GitHub app): one value that
 * tries every way of becoming shell, a flow that puts it into every kind of script through
 * every source (an input, a step output, a signal payload, a compensation, the trigger's
 * payload), and the check that it arrived as data: written out byte for byte, and the
 * canary file it tries to create never appears.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

/** Every attempt at once: each would run `touch <canary>` if the value were pasted as text. */
export function injectionValue(canary: string): string {
  return [
    `x"; touch ${canary}; echo "`,
    `'; touch ${canary}; echo '`,
    `$(touch ${canary})`,
    "`touch " + canary + "`",
    `\ntouch ${canary}\n`,
    // Would end the script's here-document early, if the value were the script's text.
    `\nEOF\ntouch ${canary}\ncat <<EOF\n`,
    "${IFS}$HOME * \\ ${BATON_EXPR_1} ${{ inputs.v }}",
  ].join(" | ");
}

/**
 * The flow: `direct` writes the input (double quotes, a here-document, bare as the
 * arguments of `:`) and makes it an output; `later` writes that output and the signal's
 * payload, then fails, so that `direct`'s compensation writes the output once more.
 */
export function injectionFlow(options: {
  dir: string;
  runsOn?: string;
  value?: string;
  on?: string;
}): string {
  const runsOn = options.runsOn === undefined ? "" : `    runs-on: ${options.runsOn}\n`;
  const value = options.value ?? "${{ inputs.v }}";
  const d = options.dir;
  return `name: injection
on:
${options.on ?? "  manual:\n    inputs:\n      v: { type: string, required: true }"}
steps:
  direct:
${runsOn}    run: |
      printf '%s' "${value}" > "${d}/quoted"
      cat > "${d}/heredoc" <<EOF
      ${value}
      EOF
      : ${value}
      { echo "o<<BATON_END"; printf '%s\\n' "${value}"; echo BATON_END; } >> "$BATON_OUTPUT"
    outputs: [o]
    compensate: printf '%s' "\${{ steps.direct.outputs.o }}" > "${d}/compensate"
  hold:
    needs: direct
    wait: { signal: go }
  later:
    needs: [direct, hold]
${runsOn}    run: |
      printf '%s' "\${{ steps.direct.outputs.o }}" > "${d}/output"
      printf '%s' "\${{ steps.hold.outputs.payload }}" > "${d}/signal"
      exit 1
`;
}

/** What the flow wrote, compared with the value; and no canary. */
export async function assertArrivedLiterally(
  dir: string,
  canary: string,
  value: string,
  payload: string = JSON.stringify(value),
): Promise<void> {
  const read = (name: string) => readFile(join(dir, name), "utf8");
  assert.equal(existsSync(canary), false, "an injection ran: the canary exists");
  assert.equal(await read("quoted"), value);
  assert.equal(await read("heredoc"), `${value}\n`);
  assert.equal(await read("output"), value);
  assert.equal(await read("signal"), payload);
  assert.equal(await read("compensate"), value);
}
