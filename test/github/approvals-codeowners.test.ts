/**
 * CODEOWNERS with GitHub's rules: patterns as GitHub documents them (its examples), the
 * last matching pattern wins, a pattern without owners makes a path ownerless, comments
 * and escapes, and lines GitHub ignores (negation, ranges).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ownersOf, parseCodeowners } from "../../app/github/approvals/index.js";

// From GitHub's "About code owners" example file.
const GITHUB_EXAMPLE = `
# These owners will be the default owners for everything in the repo.
*       @global-owner1 @global-owner2

# Order is important; the last matching pattern takes the most precedence.
*.js    @js-owner #This is an inline comment.
*.go docs@example.com
*.txt @octo-org/octocats
/build/logs/ @doctocat
docs/*  docs@example.com
apps/ @octocat
/docs/ @doctocat
/scripts/ @doctocat @octocat
**/logs @octocat
/apps/ @octocat
/apps/github
`;

describe("CODEOWNERS", () => {
  const rules = parseCodeowners(GITHUB_EXAMPLE);

  test("GitHub's examples", () => {
    assert.deepEqual(ownersOf(rules, "README.md"), ["@global-owner1", "@global-owner2"]);
    assert.deepEqual(ownersOf(rules, "src/app.js"), ["@js-owner"]);
    assert.deepEqual(ownersOf(rules, "main.go"), ["docs@example.com"]);
    assert.deepEqual(ownersOf(rules, "notes/a.txt"), ["@octo-org/octocats"]);
    assert.deepEqual(ownersOf(rules, "build/logs/today.log"), ["@octocat"], "**/logs is later");
    // /docs/ (later) owns everything under the root docs; docs/* alone would not recurse.
    assert.deepEqual(ownersOf(rules, "docs/getting-started.md"), ["@doctocat"]);
    assert.deepEqual(ownersOf(rules, "docs/build-app/troubleshooting.md"), ["@doctocat"]);
    assert.deepEqual(ownersOf(rules, "scripts/deploy.sh"), ["@doctocat", "@octocat"]);
    assert.deepEqual(ownersOf(rules, "deeply/nested/logs/x"), ["@octocat"]);
    // `/apps/github` has no owners: the path is ownerless.
    assert.deepEqual(ownersOf(rules, "apps/github/readme.md"), []);
    assert.deepEqual(ownersOf(rules, "apps/other/readme.md"), ["@octocat"]);
  });

  test("docs/* owns the files directly in docs only; unanchored patterns match at any depth", () => {
    const only = parseCodeowners("docs/*  @writer\napps/ @apps\n");
    assert.deepEqual(ownersOf(only, "docs/intro.md"), ["@writer"]);
    assert.deepEqual(ownersOf(only, "docs/sub/intro.md"), []);
    assert.deepEqual(ownersOf(only, "src/docs/intro.md"), [], "docs/* is anchored at the root");
    assert.deepEqual(ownersOf(only, "web/apps/main.ts"), ["@apps"]);
  });

  test("escaped #, and lines GitHub ignores", () => {
    const special = parseCodeowners("\\#notes @hash\n!secret @nobody\n[ab].md @range\n");
    assert.equal(special.length, 1);
    assert.deepEqual(ownersOf(special, "#notes"), ["@hash"]);
    assert.deepEqual(ownersOf(special, "a.md"), []);
  });

  test("the flow files of a repository", () => {
    const flows = parseCodeowners("* @everyone\n/.github/flows/release.yml @release-team\n");
    assert.deepEqual(ownersOf(flows, ".github/flows/release.yml"), ["@release-team"]);
    assert.deepEqual(ownersOf(flows, ".github/flows/other.yml"), ["@everyone"]);
  });
});
