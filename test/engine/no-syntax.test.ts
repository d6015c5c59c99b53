/**
 * A value never becomes syntax (DESIGN rule 11): whatever strings arrive in inputs, the
 * trigger's payload, step outputs and signal payloads, the scripts of `run` and
 * `compensate` effects are the same text, and the values travel, exactly, in the env.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decide } from "../../app/engine/index.js";
import type { Effect, Json, NewRunEvent, RunEvent } from "../../app/engine/index.js";
import { flow, META } from "./helpers.js";

const FLOW = flow({
  on: { manual: { inputs: { a: {}, b: {} } } },
  env: { FLOW_E: "${{ inputs.a }}" },
  steps: {
    first: {
      run: [
        "echo \"${{ inputs.a }}\" ${{ inputs.b }}x '${{ trigger.payload.title }}'",
        "cat <<EOF",
        "${{ trigger.payload.body }}",
        "EOF",
        "echo ${{ toJSON(trigger.payload) }} # ${{ inputs.b }}",
      ].join("\n"),
      env: { E: "${{ inputs.b }}" },
      with: { w: "${{ trigger.payload.title }}" },
      compensate: 'undo "${{ steps.first.outputs.o }}" ${{ inputs.a }}',
    },
    hold: { wait: { signal: "go" } },
    second: {
      needs: ["first", "hold"],
      run: 'use "${{ steps.first.outputs.o }}" ${{ steps.hold.outputs.payload }}',
      compensate: {
        run: "undo2 \"${{ steps.hold.outputs.payload }}\" '${{ inputs.b }}'",
        env: { C: "${{ inputs.a }}" },
      },
    },
    think: {
      needs: "second",
      agent: { prompt: "fix ${{ inputs.a }} and ${{ steps.second.outputs.o }}" },
    },
    last: { needs: "think", run: "fail ${{ steps.think.outputs.message }}" },
  },
});

interface Values {
  a: string;
  b: string;
  title: string;
  body: string;
  output: string;
  payload: Json;
  message: string;
}

/** Drives FLOW through every step to its compensations; returns every effect decided. */
function drive(values: Values): { effects: Effect[]; history: RunEvent[] } {
  const history: RunEvent[] = [];
  const effects: Effect[] = [];
  const add = (event: NewRunEvent) => history.push({ ...event, seq: history.length + 1 });
  add({
    type: "run.created",
    at: 0,
    meta: META,
    inputs: { a: values.a, b: values.b },
    trigger: { event: "webhook", payload: { title: values.title, body: values.body } },
  });
  add({ type: "run.admitted", at: 0 });
  const step = (now: number) => {
    const decision = decide(FLOW, history, now);
    for (const event of decision.events) add(event);
    effects.push(...decision.effects);
  };
  const finish = (id: string, outputs: Record<string, string>, outcome = "success" as const) =>
    add({ type: "attempt.finished", at: 0, step: id, attempt: 1, outcome, outputs });
  step(1);
  finish("first", { o: values.output });
  add({ type: "signal.received", at: 2, name: "go", payload: values.payload, by: "ci" });
  step(2);
  finish("second", { o: values.output });
  step(3);
  finish("think", { message: values.message });
  step(4);
  add({
    type: "attempt.finished",
    at: 5,
    step: "last",
    attempt: 1,
    outcome: "failure",
    outputs: {},
    retryable: false,
  });
  step(5);
  add({ type: "compensation.finished", at: 6, step: "second", outcome: "success" });
  step(6);
  add({ type: "compensation.finished", at: 7, step: "first", outcome: "success" });
  step(7);
  return { effects, history };
}

/** What an effect runs, with the values left out: its kind, its script, its env's names. */
function shape(effect: Effect): Json {
  if (effect.type !== "execute" && effect.type !== "compensate") return effect.type;
  const spec = { ...(effect.spec as Record<string, Json>) };
  // The agent's prompt is a value: it reaches the agent as data (app/runner/agent.ts).
  if (spec.agent) spec.agent = { ...(spec.agent as Record<string, Json>), prompt: "(value)" };
  // `with` and `env` in the spec are the values that also travel in the env.
  delete spec.with;
  delete spec.env;
  return { type: effect.type, step: effect.step, spec, env: Object.keys(effect.env).sort() };
}

const HARMLESS: Values = {
  a: "a",
  b: "b",
  title: "t",
  body: "body",
  output: "o",
  payload: "p",
  message: "m",
};

const INJECTIONS = [
  "$(id)",
  "`id`",
  '"; touch /tmp/p; echo "',
  "'; touch /tmp/p; echo '",
  "\ntouch /tmp/p\n",
  "EOF\ntouch /tmp/p\nEOF",
  "${IFS}",
  "${BATON_EXPR_1}",
  "}}",
  "${{ inputs.a }}",
  "\\",
  "*",
  "$'\\x41'",
];

/** Any text without NUL (see the NUL test below), with injection attempts mixed in. */
const text: fc.Arbitrary<string> = fc
  .array(fc.oneof(fc.string({ unit: "binary" }), fc.constantFrom(...INJECTIONS)), {
    maxLength: 4,
  })
  .map((pieces) => pieces.join("").replaceAll("\0", ""));

const values: fc.Arbitrary<Values> = fc.record({
  a: text,
  b: text,
  title: text,
  body: text,
  output: text,
  payload: fc
    .oneof(text, fc.jsonValue() as fc.Arbitrary<Json>)
    .filter((payload) => !JSON.stringify(payload).includes("\\u0000")),
  message: text,
});

function envOf(effects: Effect[], type: "execute" | "compensate", step: string) {
  const effect = effects.find((e) => e.type === type && e.step === step);
  assert.ok(effect && (effect.type === "execute" || effect.type === "compensate"));
  return { spec: effect.spec as Record<string, Json>, env: effect.env };
}

describe("no value becomes syntax", () => {
  const baseline = drive(HARMLESS).effects.map(shape);

  it("the baseline reaches every script: run, compensate (both forms), agent", () => {
    const scripts = drive(HARMLESS).effects.flatMap((e) =>
      e.type === "execute" || e.type === "compensate" ? [e] : [],
    );
    assert.deepEqual(
      scripts.map((s) => `${s.type} ${s.step}`),
      [
        "execute first",
        "execute second",
        "execute think",
        "execute last",
        "compensate second",
        "compensate first",
      ],
    );
    const first = envOf(drive(HARMLESS).effects, "execute", "first");
    assert.equal(
      first.spec.run,
      [
        "echo \"${BATON_EXPR_1}\" ${BATON_EXPR_2}x '${BATON_EXPR_3}'",
        "cat <<EOF",
        "${BATON_EXPR_4}",
        "EOF",
        "echo ${BATON_EXPR_5} # ${BATON_EXPR_6}",
      ].join("\n"),
    );
  });

  it("random strings in every expression position never change the scripts", () => {
    fc.assert(
      fc.property(values, (v) => {
        const { effects } = drive(v);
        assert.deepEqual(effects.map(shape), baseline);
        // The values arrive exactly, as data.
        const first = envOf(effects, "execute", "first").env;
        assert.equal(first.BATON_EXPR_1, v.a);
        assert.equal(first.BATON_EXPR_2, v.b);
        assert.equal(first.BATON_EXPR_3, v.title);
        assert.equal(first.BATON_EXPR_4, v.body);
        assert.equal(first.BATON_EXPR_5, JSON.stringify({ title: v.title, body: v.body }, null, 2));
        assert.equal(first.E, v.b);
        assert.equal(first.w, v.title);
        assert.equal(first.FLOW_E, v.a);
        const payload = JSON.stringify(v.payload);
        assert.equal(envOf(effects, "execute", "second").env.BATON_EXPR_1, v.output);
        assert.equal(envOf(effects, "execute", "second").env.BATON_EXPR_2, payload);
        const think = envOf(effects, "execute", "think").spec.agent as Record<string, Json>;
        assert.equal(think.prompt, `fix ${v.a} and ${v.output}`);
        assert.equal(envOf(effects, "execute", "last").env.BATON_EXPR_1, v.message);
        const undo2 = envOf(effects, "compensate", "second").env;
        assert.deepEqual([undo2.BATON_EXPR_1, undo2.BATON_EXPR_2, undo2.C], [payload, v.b, v.a]);
        const undo = envOf(effects, "compensate", "first").env;
        assert.deepEqual([undo.BATON_EXPR_1, undo.BATON_EXPR_2], [v.output, v.a]);
      }),
      { numRuns: 300 },
    );
  });

  it("a script's variables win over a flow's env of the same name", () => {
    const clash = flow({
      on: { manual: { inputs: { a: {} } } },
      env: { BATON_EXPR_1: "from the flow" },
      steps: { s: { run: 'echo "${{ inputs.a }}"', env: { BATON_EXPR_1: "from the step" } } },
    });
    const decision = decide(
      clash,
      [
        {
          seq: 1,
          type: "run.created",
          at: 0,
          meta: META,
          inputs: { a: "$(id)" },
          trigger: { event: "manual", payload: {} },
        },
        { seq: 2, type: "run.admitted", at: 0 },
      ],
      0,
    );
    const effect = decision.effects[0];
    assert.ok(effect?.type === "execute");
    assert.equal(effect.env.BATON_EXPR_1, "$(id)");
  });

  it("a value with a NUL character fails the attempt with what to do, since no env can carry it", () => {
    const nul = flow({
      on: { manual: { inputs: { a: {} } } },
      steps: {
        s: { run: 'echo "${{ inputs.a }}"' },
        t: { env: { X: "${{ inputs.a }}" }, run: 'echo "$X"' },
      },
    });
    const decision = decide(
      nul,
      [
        {
          seq: 1,
          type: "run.created",
          at: 0,
          meta: META,
          inputs: { a: "before\0after" },
          trigger: { event: "manual", payload: {} },
        },
        { seq: 2, type: "run.admitted", at: 0 },
      ],
      0,
    );
    assert.deepEqual(
      decision.effects.filter((e) => e.type === "execute"),
      [],
    );
    assert.equal(decision.state.steps.s?.result, "failure");
    assert.match(
      decision.state.steps.s?.reason ?? "",
      /cannot evaluate `inputs\.a`: its value contains a NUL character.*remove it/,
    );
    assert.match(decision.state.steps.t?.reason ?? "", /the value of X contains a NUL character/);
  });

  it("a stored effect of an earlier version (values in the script) does not stop a resumed run", () => {
    // A run whose first step was started before the change: its history has no trace of
    // the script's text, so deciding again after it finishes starts the next step the new way.
    const resumed = flow({
      on: { manual: { inputs: { a: {} } } },
      steps: {
        one: { run: "echo ${{ inputs.a }}" },
        two: { needs: "one", run: "echo ${{ inputs.a }}" },
      },
    });
    const history: RunEvent[] = [
      {
        seq: 1,
        type: "run.created",
        at: 0,
        meta: META,
        inputs: { a: "$(id)" },
        trigger: { event: "manual", payload: {} },
      },
      { seq: 2, type: "run.admitted", at: 0 },
      { seq: 3, type: "attempt.started", at: 0, step: "one", attempt: 1, deadline: 99_999_999 },
      {
        seq: 4,
        type: "attempt.finished",
        at: 1,
        step: "one",
        attempt: 1,
        outcome: "success",
        outputs: {},
      },
    ];
    const decision = decide(resumed, history, 2);
    const effect = decision.effects[0];
    assert.ok(effect?.type === "execute");
    assert.equal(effect.step, "two");
    assert.equal((effect.spec as { run: string }).run, "echo ${BATON_EXPR_1}");
    assert.equal(effect.env.BATON_EXPR_1, "$(id)");
  });
});
