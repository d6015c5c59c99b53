/**
 * The environment a step starts from. No step inherits the process environment of the
 * Baton that runs it (the app, `baton serve`, `baton run`, a runner): those hold the
 * app's private key, database URLs, the runner's token, the user's cloud credentials.
 * A step gets this minimal set, taken from the process (DESIGN.md rule 10), then what
 * the runner's configuration declares (`env`, `secrets`), then what the flow declares.
 *
 * The set is what a shell and ordinary tools need to behave as on the machine: where
 * programs are, the home directory, the locale and time zone, where temporary files go,
 * who the user is and their shell. Anything else a step needs is declared: in the flow
 * (`env:`) or, for what flows must never name, in the runner's configuration.
 */

/** The variables a step inherits from the process that runs it (when they are set). */
export const INHERITED_ENV = ["PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "SHELL"] as const;

/** A PATH for a process started without one (a service manager may start Baton so). */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The inherited set, from `from`. (Default: this process's environment) */
export function minimalEnv(from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV) {
    const value = from[name];
    if (value !== undefined) env[name] = value;
  }
  env.PATH ??= DEFAULT_PATH;
  return env;
}
