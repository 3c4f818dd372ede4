// `pnpm run docs`: rebuilds every generated document and the documentation site, and fails
// on the first problem.
// 1. docs/spec/requirements.json from the spec (validates the spec and its error table).
// 2. docs/reference/protocol.md from the proto comments.
// 3. The SDK API reference (docs/sdk-api/, not committed) with TypeDoc, as Markdown pages of
//    the site grouped by concern (docs/.vitepress/typedoc.json, which extends
//    packages/sdk/typedoc.json): warnings are errors, so an export that references an
//    unexported type or a broken {@link} fails the build instead of shipping a hole. Type
//    errors are left to `pnpm lint` (tsc), so that documentation problems are reported as such.
// 4. The site (VitePress) into docs/.vitepress/dist: the spec, the reference, the SDK API, the
//    guides and the conformance README, with search; a dead link fails it. `pnpm run
//    docs:serve` serves it.
//
//   node scripts/docs.mjs              all four steps
//   node scripts/docs.mjs --api-only   step 3 only
//   node scripts/docs.mjs --site-only  steps 3 and 4 (`pnpm test` runs check:gen first, which
//                                      has already regenerated and verified steps 1 and 2)
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { SITE_DIST } from "./docs-serve.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules/.bin", name);

const generated = [
  ["requirements", process.execPath, [join(root, "scripts/requirements.mjs"), "--write"], root],
  ["protocol reference", process.execPath, [join(root, "scripts/reference.mjs"), "--write"], root],
];
const api = [["sdk api (typedoc)", bin("typedoc"), ["--options", "typedoc.json"], join(root, "docs/.vitepress")]];
const site = [["site (vitepress)", bin("vitepress"), ["build", "docs"], root]];

function steps(argv) {
  if (argv.includes("--api-only")) return api;
  if (argv.includes("--site-only")) return [...api, ...site];
  return [...generated, ...api, ...site];
}

function main(argv) {
  // TypeDoc writes only the pages of today's exports; a removed export must not leave a page.
  rmSync(join(root, "docs/sdk-api"), { recursive: true, force: true });
  for (const [label, command, args, cwd] of steps(argv)) {
    process.stdout.write(`docs: ${label}\n`);
    try {
      execFileSync(command, args, { cwd, stdio: "inherit" });
    } catch {
      process.stderr.write(`docs: ${label} failed\n`);
      return 1;
    }
  }
  process.stdout.write(argv.includes("--api-only") ? "docs: done (docs/sdk-api/)\n" : `docs: done (site in ${SITE_DIST})\n`);
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
