import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseBatonCommand } from "../../app/github/baton-command.js";

describe("/baton comment commands", () => {
  test("a comment without a command is not one", () => {
    assert.equal(parseBatonCommand("Looks good to me\n/batonize later"), undefined);
  });

  test("run with inputs, quotes and --draft, anywhere in the comment", () => {
    assert.deepEqual(
      parseBatonCommand(
        'Ship it.\r\n  /baton run release.yml version=1.2 note="two words" --draft\nthanks',
      ),
      {
        ok: true,
        command: {
          kind: "run",
          flow: "release",
          inputs: { version: "1.2", note: "two words" },
          draft: true,
        },
      },
    );
    assert.deepEqual(parseBatonCommand("/baton run deploy"), {
      ok: true,
      command: { kind: "run", flow: "deploy", inputs: {}, draft: false },
    });
  });

  test("approve and reject with an optional step and a comment", () => {
    assert.deepEqual(parseBatonCommand("/baton approve review LGTM, ship"), {
      ok: true,
      command: { kind: "approve", step: "review", comment: "LGTM, ship" },
    });
    assert.deepEqual(parseBatonCommand("/baton reject"), { ok: true, command: { kind: "reject" } });
    assert.deepEqual(parseBatonCommand("/baton reject 'not now, sorry'"), {
      ok: true,
      command: { kind: "reject", comment: "not now, sorry" },
    });
  });

  test("mistakes are explained", () => {
    const cases: [string, RegExp][] = [
      ["/baton", /needs a command/],
      ["/baton deploy now", /Unknown command `deploy`/],
      ["/baton run", /Which flow\?/],
      ["/baton run release 1.2", /Expected key=value, got `1.2`/],
      ["/baton run release a=1 a=2", /Input `a` is given twice/],
      ["/baton run release --force", /Unknown option `--force`/],
      ['/baton run release note="open', /quote \("\) is not closed/],
    ];
    for (const [body, error] of cases) {
      const parsed = parseBatonCommand(body);
      assert.ok(parsed && !parsed.ok, body);
      assert.match(parsed.error, error, body);
    }
  });
});
