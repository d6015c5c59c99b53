import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { concurrencyOf, parseDuration, resolveInputs } from "../../app/engine/index.js";
import { META, flow } from "./helpers.js";

const withInputs = flow({
  on: {
    manual: {
      inputs: {
        version: { type: "string", required: true, description: "Version to ship" },
        count: { type: "number", default: 3 },
        dry: { type: "boolean", default: "false" },
        env: { type: "choice", options: ["staging", "prod"], default: "staging" },
      },
    },
  },
  steps: { a: { run: "a" } },
});

void describe("resolveInputs", () => {
  void it("coerces CLI strings and applies defaults", () => {
    assert.deepEqual(resolveInputs(withInputs, { version: "1.2", count: "5", dry: "true" }), {
      ok: true,
      inputs: { version: "1.2", count: 5, dry: true, env: "staging" },
    });
    assert.deepEqual(resolveInputs(withInputs, { version: 2, env: "prod" }), {
      ok: true,
      inputs: { version: "2", count: 3, dry: false, env: "prod" },
    });
  });

  void it("reports every problem", () => {
    assert.deepEqual(
      resolveInputs(withInputs, { count: "many", dry: "yes", env: "dev", extra: 1 }),
      {
        ok: false,
        errors: [
          'unknown input "extra": this flow\'s inputs are version, count, dry, env',
          'input "version" is required (Version to ship)',
          'input "count" must be a number, not "many"',
          'input "dry" must be true or false, not "yes"',
          'input "env" must be one of staging, prod, not "dev"',
        ],
      },
    );
    assert.deepEqual(resolveInputs(flow({ steps: { a: { run: "a" } } }), { x: "1" }), {
      ok: false,
      errors: ['unknown input "x": this flow takes no inputs'],
    });
  });
});

void describe("concurrencyOf", () => {
  const start = {
    inputs: { version: "1.2" },
    trigger: { event: "manual", payload: {} },
    meta: META,
  };
  void it("evaluates the group; a string means queue", () => {
    assert.equal(concurrencyOf(flow({ steps: { a: { run: "a" } } }), start), undefined);
    assert.deepEqual(
      concurrencyOf(
        flow({ concurrency: "rel-${{ inputs.version }}", steps: { a: { run: "a" } } }),
        start,
      ),
      {
        group: "rel-1.2",
        mode: "queue",
      },
    );
    assert.deepEqual(
      concurrencyOf(
        flow({
          concurrency: { group: "${{ run.repository }}/${{ trigger.event }}", mode: "reject" },
          steps: { a: { run: "a" } },
        }),
        start,
      ),
      { group: "acme/app/manual", mode: "reject" },
    );
  });
});

void describe("parseDuration", () => {
  void it("parses units and sums", () => {
    assert.equal(parseDuration("1h30m"), 5_400_000);
    assert.equal(parseDuration("2d"), 172_800_000);
    assert.equal(parseDuration("250ms"), 250);
    assert.equal(parseDuration("10s"), 10_000);
    assert.throws(() => parseDuration("soon"), /not a duration/);
  });
});
