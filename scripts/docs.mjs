// `pnpm docs`: rebuilds every generated document and fails on the first problem.
// 1. docs/spec/requirements.json from the spec (validates the spec and its error table).
// 2. docs/reference/protocol.md from the proto comments.
// 3. The SDK API reference (docs/sdk-api/, not committed) with TypeDoc, using
//    packages/sdk/typedoc.json: warnings are errors, so an export that references an
//    unexported type or a broken {@link} fails the build instead of shipping a hole.
//    Type errors are left to `pnpm lint` (tsc), so that documentation problems are reported
//    as such.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// `--api-only` builds just the SDK API: `pnpm test` runs it right after check:gen, which has
// already regenerated and verified the requirement list and the protocol reference.
const apiOnly = process.argv.includes("--api-only");
const steps = [
  ...(apiOnly
    ? []
    : [
        ["requirements", process.execPath, [join(root, "scripts/requirements.mjs"), "--write"], root],
        ["protocol reference", process.execPath, [join(root, "scripts/reference.mjs"), "--write"], root],
      ]),
  ["sdk api (typedoc)", join(root, "node_modules/.bin/typedoc"), ["--options", "typedoc.json"], join(root, "packages/sdk")],
];

for (const [label, command, args, cwd] of steps) {
  process.stdout.write(`docs: ${label}\n`);
  try {
    execFileSync(command, args, { cwd, stdio: "inherit" });
  } catch {
    process.stderr.write(`docs: ${label} failed\n`);
    process.exit(1);
  }
}
process.stdout.write(apiOnly ? "docs: done (docs/sdk-api/)\n" : "docs: done (docs/spec/requirements.json, docs/reference/protocol.md, docs/sdk-api/)\n");
