// Fails when `pnpm gen` would change anything that is committed: generated code must be
// regenerated and committed together with the proto or spec change that caused it.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const generated = ["packages/sdk/src/gen", "packages/reference-server/src/gen", "conformance/src/portability/continuity-v1.binpb", "packages/bundle/src/continuity-v1.binpb", "docs/spec/requirements.json", "docs/reference/protocol.md"];
execFileSync(process.execPath, [join(root, "scripts/gen.mjs")], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
const status = execFileSync("git", ["status", "--porcelain", "--", ...generated], { cwd: root, encoding: "utf8" });
if (status.trim() !== "") {
  process.stderr.write(`check:gen: generated files are stale; run \`pnpm gen\` and commit:\n${status}`);
  process.exit(1);
}
process.stdout.write("check:gen: generated code is fresh\n");
