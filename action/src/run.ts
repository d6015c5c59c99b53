// The bundle's entry (action/dist/index.js): runAction never rejects; it fails the step itself.
import { runAction } from "./runner.js";

await runAction();
