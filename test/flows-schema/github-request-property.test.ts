/**
 * Property: whatever strings reach a `github` step's expression positions (every path
 * parameter and body or query value of any published route, including `url`, `baseUrl`,
 * `headers`, `method` and `request`), the request built from it stays on GitHub's host,
 * under the run's repository, on the route's method and number of segments, with each
 * parameter decoding back to its value; or it is refused. Values go through the engine's
 * own expansion (expandDeep) first, as at execution.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { expandDeep } from "../../app/engine/evaluate.js";
import { buildGithubRequest, parseGithubRoute } from "../../flows-schema/github-request.js";
import { REPOSITORY_ROUTES } from "../../flows-schema/github-routes.js";
import { parseFlow } from "../../flows-schema/index.js";

const BASE = "https://ghe.example/api/v3";
const REPOSITORY = "acme/widgets";
const OPTION_KEYS = ["url", "baseUrl", "headers", "method", "request", "mediaType", "data"];

/** Pieces that have broken URL builders: dot segments, separators, encodings, templates. */
const HOSTILE = fc.constantFrom(
  "..",
  ".",
  "",
  "/",
  "a/b",
  "%2e%2e",
  "%2E.",
  ".%2e",
  "../../secret",
  "..\\..\\secret",
  "?owner=other",
  "#fragment",
  "//evil.example",
  "http://evil.example/",
  "@evil.example",
  "%00",
  "%2F",
  ":owner",
  "{owner}",
  "{repo}",
  "${{ inputs.v0 }}",
  "\u2025",
  "\uff0e\uff0e",
  " ",
  "\n",
);
const VALUE = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  HOSTILE,
  fc
    .array(fc.oneof(HOSTILE, fc.string({ maxLength: 5 })), { maxLength: 5 })
    .map((parts) => parts.join("")),
);

describe("github step requests under random values", () => {
  it("never leave the run's repository, the host, the method or the route's segments", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...REPOSITORY_ROUTES),
        fc.array(VALUE, { minLength: 12, maxLength: 12 }),
        (request, values) => {
          const parsed = parseGithubRoute(request);
          assert.ok("route" in parsed, request);
          const { route } = parsed;
          const keys = [...route.params, ...OPTION_KEYS, "body"];
          // The flow as written: every position an expression over an input.
          const spec = Object.fromEntries(keys.map((key, i) => [key, `\${{ inputs.v${i % 12} }}`]));
          const inputs = Object.fromEntries(values.map((value, i) => [`v${i}`, value]));
          const source = [
            "on:",
            "  manual:",
            "    inputs:",
            ...values.map((_, i) => `      v${i}: { type: string }`),
            "steps:",
            "  call:",
            "    github:",
            `      request: ${request}`,
            `      with: ${JSON.stringify(spec)}`,
          ].join("\n");
          const validated = parseFlow(source, "property.yml");
          assert.ok(validated.flow, JSON.stringify(validated.diagnostics));
          const expanded = expandDeep(spec, { contexts: { inputs } }) as Record<string, unknown>;
          const built = buildGithubRequest(route, expanded, REPOSITORY);
          if ("error" in built) {
            assert.ok(
              route.params.some((name) => {
                const value = String(expanded[name]);
                return ["", ".", ".."].includes(value) || !wellFormed(value);
              }),
              `refused without cause: ${built.error}`,
            );
            return;
          }
          assert.equal(built.request.method, route.method);
          // Octokit joins the base URL and the path as text, then fetch parses the result.
          const url = new URL(BASE + built.request.path);
          assert.equal(url.origin, "https://ghe.example");
          const segments = url.pathname.split("/");
          const templateSegments = `/api/v3${route.template}`.split("/");
          assert.equal(segments.length, templateSegments.length, url.pathname);
          assert.deepEqual(segments.slice(0, 5), ["", "api", "v3", "repos", "acme"]);
          assert.equal(segments[5], "widgets");
          // Each segment is the template's, every parameter in it its value, encoded.
          templateSegments.forEach((segment, i) => {
            const expected = segment.replace(/\{([^}]+)\}/g, (_whole, name: string) =>
              name === "owner" || name === "repo"
                ? name === "owner"
                  ? "acme"
                  : "widgets"
                : encodeURIComponent(String(expanded[name])),
            );
            assert.equal(segments[i], expected);
          });
          if (route.method === "GET") assert.equal(built.request.body, undefined);
          else
            for (const key of OPTION_KEYS)
              assert.equal(built.request.body?.[key], expanded[key], "an option key is data");
        },
      ),
      { numRuns: 600 },
    );
  });

  it("refuses `owner` and `repo` in with, whatever their value", () => {
    const parsed = parseGithubRoute("GET /repos/{owner}/{repo}/issues/{issue_number}");
    assert.ok("route" in parsed);
    fc.assert(
      fc.property(fc.constantFrom("owner", "repo"), VALUE, (key, value) => {
        const built = buildGithubRequest(
          parsed.route,
          { issue_number: 1, [key]: value },
          REPOSITORY,
        );
        assert.ok("error" in built);
        assert.match(built.error, /cannot be given in `with`/);
      }),
    );
  });
});

/** Whether a string is valid Unicode (no lone surrogates), which a URL can carry. */
function wellFormed(value: string): boolean {
  try {
    encodeURIComponent(value);
    return true;
  } catch {
    return false;
  }
}
