/**
 * The pure parts of triggers: GitHub Actions filter patterns, `on.github` filters against
 * real payload shapes, and what a due schedule starts (catch-up after downtime).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { compilePatterns } from "../../app/github/triggers/filter-patterns.js";
import { isIgnoredSender } from "../../app/github/triggers/github-event-trigger.js";
import {
  eventBranch,
  eventFacts,
  eventLabels,
  matchGitHubEvent,
  pushChangedFiles,
} from "../../app/github/triggers/match-github-event.js";
import {
  LATE_TICK_MS,
  MAX_CATCH_UP_RUNS,
  planScheduleTicks,
} from "../../app/github/triggers/schedule-ticker.js";
import type { GithubEventFilter } from "../../flows-schema/schema.js";
import { webhookExample } from "../fake-github/webhooks.js";

describe("filter patterns (GitHub Actions semantics)", () => {
  const cases: [patterns: string[], value: string, expected: boolean][] = [
    [["main"], "main", true],
    [["main"], "main2", false],
    [["release/*"], "release/1.0", true],
    [["release/*"], "release/1.0/hotfix", false], // `*` does not cross `/`
    [["release/**"], "release/1.0/hotfix", true],
    [["*"], "feature/x", false],
    [["**"], "feature/x", true],
    [["feature-*"], "feature-", true],
    [["v1.?"], "v1.", true], // `?`: zero or one of the preceding character
    [["v1.?"], "v1", true],
    [["v2+"], "v222", true], // `+`: one or more of the preceding character
    [["v2+"], "v", false],
    [["[ab]ranch"], "branch", true],
    [["[ab]ranch"], "cranch", false],
    [["**/*.js"], "app.js", true], // `**/` also matches at the top
    [["**/*.js"], "src/deep/app.js", true],
    [["src/**/*.ts"], "src/a.ts", true],
    [["docs/**"], "docs/guide/intro.md", true],
    [["docs/**"], "src/docs/x.md", false],
    [["*.md"], "docs/README.md", false],
    [["a.b"], "axb", false], // `.` is literal
    [["release/**", "!release/**-alpha"], "release/v1-alpha", false], // a later `!` excludes
    [["release/**", "!release/**-alpha"], "release/v1", true],
    [["!x", "**"], "x", true], // the last matching pattern decides
  ];
  for (const [patterns, value, expected] of cases) {
    test(`${JSON.stringify(patterns)} ${expected ? "matches" : "does not match"} ${value}`, () => {
      assert.equal(compilePatterns(patterns)(value), expected);
    });
  }
});

describe("the facts of real payloads", () => {
  test("push: the branch from refs/heads, the changed files of every commit; a tag has no branch", () => {
    const push = webhookExample("push");
    push.ref = "refs/heads/release/2.0";
    push.commits = [
      { added: ["a.txt"], modified: ["src/x.ts"], removed: [] },
      { added: [], modified: ["src/x.ts"], removed: ["old.md"] },
    ];
    assert.equal(eventBranch("push", push), "release/2.0");
    assert.deepEqual(pushChangedFiles(push).sort(), ["a.txt", "old.md", "src/x.ts"]);
    push.ref = "refs/tags/v1";
    assert.equal(eventBranch("push", push), undefined);
  });

  test("pull_request: the base branch; labels of the pull request", () => {
    const opened = webhookExample("pull_request", "opened");
    const pull = opened.pull_request as { base: { ref: string }; labels: { name: string }[] };
    pull.base.ref = "main";
    pull.labels = [{ name: "deploy" }, { name: "ci" }];
    assert.equal(eventBranch("pull_request", opened), "main");
    assert.deepEqual(eventLabels("opened", opened), ["deploy", "ci"]);
  });

  test("issues.labeled: only the label just added counts", () => {
    const labeled = webhookExample("issues", "labeled");
    (labeled.label as { name: string }).name = "release";
    (labeled.issue as { labels: { name: string }[] }).labels = [
      { name: "bug" },
      { name: "release" },
    ];
    assert.deepEqual(eventLabels("labeled", labeled), ["release"]);
    assert.equal(eventBranch("issues", labeled), undefined);
  });
});

describe("on.github filters", () => {
  const push = (branch: string, files: string[]) =>
    eventFacts(
      "push",
      undefined,
      { ref: `refs/heads/${branch}`, commits: [{ added: files, modified: [], removed: [] }] },
      undefined,
    );
  const pullRequest = (action: string, base: string, files?: string[]) =>
    eventFacts(
      "pull_request",
      action,
      { pull_request: { base: { ref: base }, labels: [] } },
      files,
    );
  const labeled = (label: string) =>
    eventFacts("issues", "labeled", { label: { name: label }, issue: { labels: [] } }, undefined);

  const cases: [
    name: string,
    filter: GithubEventFilter | null,
    facts: ReturnType<typeof eventFacts>,
    matches: boolean,
  ][] = [
    ["no filter", null, push("any", []), true],
    ["types: the action is listed", { types: ["opened"] }, pullRequest("opened", "main"), true],
    [
      "types: the action is not listed",
      { types: ["opened"] },
      pullRequest("closed", "main"),
      false,
    ],
    ["types: push has no action", { types: ["opened"] }, push("main", []), false],
    ["branches: match", { branches: ["main", "release/*"] }, push("release/1", []), true],
    ["branches: no match", { branches: ["main"] }, push("feature/x", []), false],
    [
      "branches: a pull request's base",
      { branches: ["main"] },
      pullRequest("opened", "main"),
      true,
    ],
    [
      "branches-ignore",
      { "branches-ignore": ["dependabot/**"] },
      push("dependabot/npm/x", []),
      false,
    ],
    ["branches-ignore: other branch", { "branches-ignore": ["gh-pages"] }, push("main", []), true],
    ["branches: an event without a branch", { branches: ["main"] }, labeled("x"), false],
    [
      "paths: one file matches",
      { paths: ["src/**"] },
      push("main", ["README.md", "src/a.ts"]),
      true,
    ],
    ["paths: none matches", { paths: ["src/**"] }, push("main", ["README.md"]), false],
    [
      "paths-ignore: every file ignored",
      { "paths-ignore": ["docs/**"] },
      push("main", ["docs/a.md"]),
      false,
    ],
    [
      "paths-ignore: one file not ignored",
      { "paths-ignore": ["docs/**"] },
      push("main", ["docs/a.md", "x.ts"]),
      true,
    ],
    [
      "paths: pull request files",
      { paths: ["**/*.sql"] },
      pullRequest("opened", "main", ["db/1.sql"]),
      true,
    ],
    ["paths: unknown files", { paths: ["**"] }, pullRequest("opened", "main", undefined), false],
    [
      "labels: the added label is listed",
      { types: ["labeled"], labels: ["release"] },
      labeled("release"),
      true,
    ],
    ["labels: another label", { labels: ["release"] }, labeled("bug"), false],
    [
      "every filter together",
      { types: ["opened"], branches: ["main"], paths: ["src/**"] },
      pullRequest("opened", "main", ["src/x.ts"]),
      true,
    ],
  ];
  for (const [name, filter, facts, matches] of cases) {
    test(name, () => {
      assert.equal(matchGitHubEvent(filter, facts).matches, matches);
    });
  }
});

describe("senders whose events start nothing", () => {
  test("by default every bot is ignored; with botLogin only this app's bot", () => {
    const bot = { sender: { login: "baton[bot]", type: "Bot" } };
    const otherBot = { sender: { login: "dependabot[bot]", type: "Bot" } };
    const person = { sender: { login: "octocat", type: "User" } };
    assert.equal(isIgnoredSender(bot, {}), true);
    assert.equal(isIgnoredSender(otherBot, {}), true);
    assert.equal(isIgnoredSender(person, {}), false);
    assert.equal(isIgnoredSender(bot, { botLogin: "baton[bot]" }), true);
    assert.equal(isIgnoredSender(otherBot, { botLogin: "baton[bot]" }), false);
  });
});

describe("what a due schedule starts", () => {
  const hourly = { cron: "0 * * * *", timezone: "UTC" };
  const at = (iso: string) => new Date(iso);

  test("on time: the tick it waited for, then the next one", () => {
    const plan = planScheduleTicks(
      { ...hourly, nextAt: at("2026-01-01T10:00:00Z"), catchUp: undefined },
      at("2026-01-01T10:00:05Z"),
    );
    assert.deepEqual(plan.ticks, [at("2026-01-01T10:00:00Z")]);
    assert.equal(plan.skipped, 0);
    assert.deepEqual(plan.nextAt, at("2026-01-01T11:00:00Z"));
  });

  test("after downtime, latest (the default): one run for the latest missed tick", () => {
    const plan = planScheduleTicks(
      { ...hourly, nextAt: at("2026-01-01T10:00:00Z"), catchUp: undefined },
      at("2026-01-01T15:30:00Z"),
    );
    assert.deepEqual(plan.ticks, [at("2026-01-01T15:00:00Z")]);
    assert.equal(plan.skipped, 5);
    assert.deepEqual(plan.nextAt, at("2026-01-01T16:00:00Z"));
  });

  test("none: nothing for a tick more than LATE_TICK_MS late; an on-time tick still runs", () => {
    const late = planScheduleTicks(
      { ...hourly, nextAt: at("2026-01-01T10:00:00Z"), catchUp: "none" },
      new Date(at("2026-01-01T12:00:00Z").getTime() + LATE_TICK_MS + 1),
    );
    assert.deepEqual(late.ticks, []);
    assert.equal(late.skipped, 3);
    const onTime = planScheduleTicks(
      { ...hourly, nextAt: at("2026-01-01T10:00:00Z"), catchUp: "none" },
      at("2026-01-01T10:00:30Z"),
    );
    assert.deepEqual(onTime.ticks, [at("2026-01-01T10:00:00Z")]);
  });

  test("all: every missed tick, oldest first, at most MAX_CATCH_UP_RUNS (the latest)", () => {
    const few = planScheduleTicks(
      { ...hourly, nextAt: at("2026-01-01T10:00:00Z"), catchUp: "all" },
      at("2026-01-01T12:10:00Z"),
    );
    assert.deepEqual(few.ticks, [
      at("2026-01-01T10:00:00Z"),
      at("2026-01-01T11:00:00Z"),
      at("2026-01-01T12:00:00Z"),
    ]);
    const many = planScheduleTicks(
      { cron: "* * * * *", timezone: "UTC", nextAt: at("2026-01-01T00:00:00Z"), catchUp: "all" },
      at("2026-01-02T00:00:00Z"),
    );
    assert.equal(many.ticks.length, MAX_CATCH_UP_RUNS);
    assert.deepEqual(many.ticks.at(-1), at("2026-01-02T00:00:00Z"));
    assert.ok(many.skipped > 0);
  });

  test("a time zone: 09:00 in Oslo is 08:00 UTC in winter", () => {
    const plan = planScheduleTicks(
      {
        cron: "0 9 * * *",
        timezone: "Europe/Oslo",
        nextAt: at("2026-01-05T08:00:00Z"),
        catchUp: undefined,
      },
      at("2026-01-05T08:00:01Z"),
    );
    assert.deepEqual(plan.ticks, [at("2026-01-05T08:00:00Z")]);
    assert.deepEqual(plan.nextAt, at("2026-01-06T08:00:00Z"));
  });
});
