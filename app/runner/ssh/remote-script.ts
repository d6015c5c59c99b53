/**
 * The shell text an SSH step sends to the host. Nothing here does I/O: the executor sends
 * these strings on a channel's stdin, never on a command line, so that neither the step's
 * script nor its environment shows up in the host's process list.
 *
 * The protocol of one step, on one exec channel running REMOTE_SHELL:
 * 1. The client writes the wrapper (stepWrapper) and keeps stdin open.
 * 2. The wrapper makes a fresh workspace (mktemp -d), writes the script into it, prints
 *    `baton-workspace <dir>` as the first line of stdout, and starts the script in a new
 *    session (setsid), so that the script and everything it starts form one process group.
 * 3. A watchdog in the wrapper reads the rest of stdin. `stop` (the client cancels or times
 *    out) or end of input (the connection is gone: sshd closes the pipe) stops the group:
 *    SIGTERM, then SIGKILL after a grace period. After a lost connection it also removes
 *    the workspace, since nobody will come back for the outputs.
 * 4. When the script ends, the wrapper kills what is left of the group and exits with the
 *    script's status. The client then reads the outputs and removes the workspace on a
 *    second channel (outputReader).
 */

/**
 * What the exec channel runs: a shell reading its script from stdin. Bash where there is
 * one, because bash reads a pipe one byte at a time and so leaves the rest of stdin (the
 * stop line) to the watchdog; sh otherwise.
 */
export const REMOTE_SHELL =
  "if command -v bash >/dev/null 2>&1; then exec bash --noprofile --norc -s; else exec sh -s; fi";

/** The first line of the wrapper's stdout, before anything the step prints. */
export const WORKSPACE_LINE_PREFIX = "baton-workspace ";

/** What the client sends on stdin to stop the step (then it ends stdin). */
export const STOP_LINE = "stop\n";

/** The wrapper's exit status when it could not start the step at all. */
export const WRAPPER_FAILED_STATUS = 125;

export interface RemoteStep {
  /** The step's `run` text. */
  script: string;
  /** `sh`, `bash`, or undefined for bash where the host has it and sh otherwise. */
  shell: "bash" | "sh" | undefined;
  /** Exported before the script starts; names must be valid shell names (see invalidEnvName). */
  env: Record<string, string>;
  /** Relative to the workspace (or absolute). */
  workingDirectory: string | undefined;
  /** Between SIGTERM and SIGKILL when the step is stopped. */
  killGraceMs: number;
  /** Random, to make the script's here-document delimiter unguessable. */
  nonce: string;
}

/** Single-quoted for POSIX shells: the value arrives literally, whatever it holds. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** Why this variable cannot be passed to a shell, or undefined if it can. */
export function invalidEnvName(name: string, value: string): string | undefined {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    return `environment variable name ${JSON.stringify(name)} is not a valid shell name (letters, digits and _, not starting with a digit)`;
  }
  if (value.includes("\0")) return `environment variable ${name} contains a NUL character`;
  return undefined;
}

export function stepWrapper(step: RemoteStep): string {
  const delimiter = `BATON_STEP_${step.nonce}`;
  // A quoted here-document is literal; only a line equal to the delimiter could end it early.
  if (step.script.split(/\r?\n/).includes(delimiter)) {
    throw new Error("the step's script contains the here-document delimiter; try again");
  }
  const script = step.script.endsWith("\n") ? step.script : `${step.script}\n`;
  const exports = Object.entries(step.env)
    .map(([name, value]) => `    export ${name}=${shellQuote(value)}\n`)
    .join("");
  const directory =
    step.workingDirectory === undefined
      ? `"$base/workspace"`
      : step.workingDirectory.startsWith("/")
        ? shellQuote(step.workingDirectory)
        : `"$base/workspace"/${shellQuote(step.workingDirectory)}`;
  // Programs are resolved with the host's PATH before the step's environment (which may set
  // PATH, or IFS) is exported, and that happens only in the subshell that becomes the step.
  const shell =
    step.shell === "sh"
      ? `  set -- "$(command -v sh)" -e\n`
      : step.shell === "bash"
        ? `  command -v bash >/dev/null 2>&1 || { fail "the step asks for bash (shell: bash) but this host has none"; return; }\n` +
          `  set -- "$(command -v bash)" --noprofile --norc -eo pipefail\n`
        : // Like the local shell: bash where there is one, with pipefail; sh otherwise.
          `  if command -v bash >/dev/null 2>&1; then set -- "$(command -v bash)" --noprofile --norc -eo pipefail; ` +
          `else set -- "$(command -v sh)" -e; fi\n`;
  const graceTenths = Math.max(1, Math.ceil(step.killGraceMs / 100));
  return (
    `baton_step() {\n` +
    `  umask 077\n` +
    `  fail() { echo "baton: $1" >&2; [ -n "\${base:-}" ] && rm -rf -- "$base"; return ${WRAPPER_FAILED_STATUS}; }\n` +
    `  command -v setsid >/dev/null 2>&1 || { fail "this host has no setsid (util-linux), which Baton needs to stop a step's processes"; return; }\n` +
    `  base=$(mktemp -d "\${TMPDIR:-/tmp}/baton-step.XXXXXXXXXX") || { base=; fail "mktemp -d could not create a workspace in \${TMPDIR:-/tmp}"; return; }\n` +
    `  mkdir -- "$base/workspace" && : > "$base/output" || { fail "could not prepare the workspace in $base"; return; }\n` +
    `  cat > "$base/step.sh" <<'${delimiter}' || { fail "could not write the step's script to $base"; return; }\n` +
    script +
    `${delimiter}\n` +
    shell +
    `  setsid=$(command -v setsid)\n` +
    `  mkdir -p -- ${directory} && cd -- ${directory} || { fail "could not enter the working directory"; return; }\n` +
    `  printf '${WORKSPACE_LINE_PREFIX}%s\\n' "$base"\n` +
    `  exec 3<&0\n` +
    // A new session: the script and all it starts share one process group, whose id is $!
    // (setsid does not fork here: a background job of a shell without job control is not a
    // group leader, so setsid runs the script in its own process).
    `  (\n` +
    exports +
    `    export BATON_WORKSPACE="$base/workspace" BATON_OUTPUT="$base/output" GITHUB_OUTPUT="$base/output"\n` +
    `    exec "$setsid" "$@" "$base/step.sh"\n` +
    `  ) </dev/null 3<&- &\n` +
    `  group=$!\n` +
    `  (\n` +
    `    if IFS= read -r line && [ "$line" = stop ]; then :; else : > "$base/connection-lost"; fi\n` +
    // A stop that comes at once may come before setsid has made the group.
    `    while ! kill -0 -$group 2>/dev/null && kill -0 $group 2>/dev/null; do sleep 0.01; done\n` +
    `    kill -TERM -$group 2>/dev/null\n` +
    `    tenths=0\n` +
    `    while [ $tenths -lt ${graceTenths} ] && kill -0 -$group 2>/dev/null; do sleep 0.1; tenths=$((tenths + 1)); done\n` +
    `    kill -KILL -$group 2>/dev/null\n` +
    `  ) <&3 3<&- >/dev/null 2>&1 &\n` +
    `  watchdog=$!\n` +
    `  exec 3<&-\n` +
    `  wait $group\n` +
    `  status=$?\n` +
    // Whatever the script left running in the background goes with it, as with the local shell.
    `  kill -KILL -$group 2>/dev/null\n` +
    `  kill -KILL $watchdog 2>/dev/null\n` +
    `  wait $watchdog 2>/dev/null\n` +
    `  [ -e "$base/connection-lost" ] && rm -rf -- "$base"\n` +
    `  return $status\n` +
    `}\n` +
    // One line, parsed whole before it runs: the shell reads no further from stdin.
    `baton_step; exit $?\n`
  );
}

/** Prints the outputs file of a finished step, then removes its workspace. */
export function outputReader(workspaceBase: string): string {
  const base = shellQuote(workspaceBase);
  return `cat -- ${base}/output 2>/dev/null; rm -rf -- ${base}\nexit 0\n`;
}
