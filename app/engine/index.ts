/** The engine's public surface: pure functions over a flow version and a run's events. */
export { decide } from "./decide.js";
export { replay } from "./replay.js";
export { concurrencyOf } from "./concurrency.js";
export { resolveInputs } from "./inputs.js";
export { parseDuration } from "./duration.js";
export * from "./types.js";
