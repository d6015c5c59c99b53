/** The engine's public surface: pure functions over a flow version and a run's events. */
export { decide, decideOn } from "./decide.js";
export { apply, detach, fold, replay } from "./replay.js";
export type { Fold } from "./replay.js";
export { concurrencyOf } from "./concurrency.js";
export { resolveInputs } from "./inputs.js";
export { parseDuration } from "./duration.js";
export * from "./types.js";
