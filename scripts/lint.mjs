// `pnpm lint`: buf lint, buf format check, buf breaking, and a strict typecheck of every package.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const git = (...args) => {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
};

// `buf breaking` (WIRE_JSON) guards the published package. On main it compares against the
// commit where continuity.v1 was frozen (.ci/proto-baseline), so no later commit can break
// v1; on any other branch it also compares against main.
const breakingRefs = [];
const baselineFile = join(root, ".ci", "proto-baseline");
if (existsSync(baselineFile)) {
  const baseline = readFileSync(baselineFile, "utf8").split("\n").find((line) => /^[0-9a-f]{40}$/.test(line.trim()));
  if (baseline === undefined) throw new Error(".ci/proto-baseline holds no commit hash");
  if (git("cat-file", "-e", `${baseline.trim()}^{commit}`) === undefined) {
    throw new Error(`.ci/proto-baseline names ${baseline.trim()}, which this clone does not have (clone with full history)`);
  }
  breakingRefs.push(baseline.trim());
}
const branch = git("rev-parse", "--abbrev-ref", "HEAD");
if (branch !== undefined && branch !== "main" && git("rev-parse", "--verify", "--quiet", "main") !== undefined) {
  breakingRefs.push("main");
}

const steps = [
  ["buf lint", bin("buf"), ["lint"]],
  ["buf format", bin("buf"), ["format", "--diff", "--exit-code"]],
  ...breakingRefs.map((ref) => [`buf breaking against ${ref}`, bin("buf"), ["breaking", "--against", `.git#ref=${ref}`]]),
  ["typecheck sdk", bin("tsc"), ["-p", "packages/sdk/tsconfig.json"]],
  ["typecheck reference-server", bin("tsc"), ["-p", "packages/reference-server/tsconfig.json"]],
  ["typecheck bundle", bin("tsc"), ["-p", "packages/bundle/tsconfig.json"]],
  ["typecheck cli", bin("tsc"), ["-p", "packages/cli/tsconfig.json"]],
  ["typecheck conformance", bin("tsc"), ["-p", "conformance/tsconfig.json"]],
  ["typecheck vector generator", bin("tsc"), ["-p", "conformance/vectors/tsconfig.json"]],
  ["test vectors fresh", process.execPath, ["--conditions=source", "--import", "tsx", "conformance/vectors/generate.ts", "--check"]],
];
for (const [label, cmd, args] of steps) {
  process.stdout.write(`lint: ${label}\n`);
  try {
    execFileSync(cmd, args, { cwd: root, stdio: "inherit" });
  } catch {
    process.stderr.write(`lint: ${label} failed\n`);
    process.exit(1);
  }
}
