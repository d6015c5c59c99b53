/** `node dist/bench/validate-main.js`: the validator benchmark alone. */
import { benchValidate } from "./validate.js";

await benchValidate();
