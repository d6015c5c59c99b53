/**
 * The reading of shell quoting behind the validator's quoting warning and the agent's
 * `{prompt}`: checked against what real bash and sh do with the same scripts.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import fc from "fast-check";
import { expands, holeContexts } from "../../flows-schema/shell-quoting.js";

const HOLE = "\u0001";

/** Scripts with one hole (HOLE), each printing what it makes of the hole. */
const CASES: { script: string; kind: string }[] = [
  { script: `echo ${HOLE}`, kind: "bare" },
  { script: `echo "x ${HOLE} y"`, kind: "double" },
  { script: `echo 'x ${HOLE} y'`, kind: "single" },
  { script: `echo "it's" ${HOLE}`, kind: "bare" },
  { script: `echo 'say "hi"' "${HOLE}"`, kind: "double" },
  { script: `echo $'a\\'b' 'c' ${HOLE}`, kind: "bare" },
  { script: `echo $'${HOLE}'`, kind: "ansi-c" },
  { script: `echo \\'${HOLE}`, kind: "bare" },
  { script: `echo "\\"${HOLE}"`, kind: "double" },
  { script: `echo "$(echo '${HOLE}')"`, kind: "single" },
  { script: `echo "$(echo ${HOLE})"`, kind: "bare" },
  { script: `echo "\${UNSET:-${HOLE}}"`, kind: "double" },
  { script: "echo `echo '" + HOLE + "'`", kind: "single" },
  { script: "echo `echo " + HOLE + "`", kind: "bare" },
  { script: `# don't\necho ${HOLE}`, kind: "bare" },
  { script: `echo a # '\necho ${HOLE}`, kind: "bare" },
  { script: `echo \${#HOME} '${HOLE}'`, kind: "single" },
  { script: `echo $((1<<2)) ${HOLE}`, kind: "bare" },
  { script: `cat <<<'${HOLE}'`, kind: "single" },
  { script: `cat <<EOF\n'${HOLE}'\nEOF`, kind: "heredoc" },
  { script: `cat <<'EOF'\n${HOLE}\nEOF`, kind: "quoted-heredoc" },
  { script: `cat <<"EOF"\n${HOLE}\nEOF`, kind: "quoted-heredoc" },
  { script: `cat <<\\EOF\n${HOLE}\nEOF`, kind: "quoted-heredoc" },
  { script: `cat <<-'EOF'\n\t${HOLE}\n\tEOF`, kind: "quoted-heredoc" },
  { script: `cat <<'A'; echo "${HOLE}"\nA\n`, kind: "double" },
  { script: `cat <<'A' <<B\nx\nA\n${HOLE}\nB`, kind: "heredoc" },
  { script: `cat <<'EOF'\nx\nEOF\necho '${HOLE}'`, kind: "single" },
  { script: `cat <<'EOF'\nEOF x\nEOF\necho ${HOLE}`, kind: "bare" },
  { script: `echo "$(cat <<'EOF'\n${HOLE}\nEOF\n)"`, kind: "quoted-heredoc" },
  { script: `f() { echo '${HOLE}'; }; f`, kind: "single" },
  { script: `case x in x) echo ${HOLE};; esac`, kind: "bare" },
];

function contextOf(script: string): string {
  const [before, after] = script.split(HOLE);
  return holeContexts([before ?? "", null, after ?? ""])[0]?.kind ?? "none";
}

describe("shell quoting", () => {
  for (const { script, kind } of CASES) {
    it(`${JSON.stringify(script.replace(HOLE, "${V}"))} is ${kind}, as bash and sh agree`, () => {
      assert.equal(contextOf(script), kind);
      const expected = expands({ kind } as never);
      for (const shell of ["bash", "sh"]) {
        // `$'…'` is bash's; sh (dash) has no such quoting.
        if (shell === "sh" && script.includes("$'")) continue;
        if (shell === "sh" && script.includes("<<<")) continue;
        const out = execFileSync(shell, ["-c", script.replace(HOLE, "${V}")], {
          env: { PATH: process.env.PATH, V: "VALUE" },
          encoding: "utf8",
        });
        assert.equal(out.includes("VALUE"), expected, `${shell} printed ${JSON.stringify(out)}`);
      }
    });
  }

  it("reads every script without throwing, whatever it holds", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.string({ unit: "binary" }),
            fc.constantFrom("'", '"', "$(", "${", ")", "}", "`", "<<", "<<'E'", "\nE\n", "#", "\\"),
            fc.constant(null),
          ),
        ),
        (pieces) => {
          const contexts = holeContexts(pieces);
          assert.equal(contexts.length, pieces.filter((piece) => piece === null).length);
        },
      ),
      { numRuns: 500 },
    );
  });
});
