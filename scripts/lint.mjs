// `pnpm lint`: buf lint, buf format check, buf breaking, and a strict typecheck of every package.
// Prints each step with how long it took.
import { execFileSync, spawn } from "node:child_process";
import { availableParallelism } from "node:os";
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

// The longest first (the typechecks, reference-server's the longest), so that the cores stay
// busy to the end.
const steps = [
  ["typecheck reference-server", bin("tsc"), ["-p", "packages/reference-server/tsconfig.json"]],
  ["typecheck conformance", bin("tsc"), ["-p", "conformance/tsconfig.json"]],
  ["typecheck sdk", bin("tsc"), ["-p", "packages/sdk/tsconfig.json"]],
  ["typecheck cli", bin("tsc"), ["-p", "packages/cli/tsconfig.json"]],
  ["typecheck bundle", bin("tsc"), ["-p", "packages/bundle/tsconfig.json"]],
  ["typecheck vector generator", bin("tsc"), ["-p", "conformance/vectors/tsconfig.json"]],
  ["buf lint", bin("buf"), ["lint"]],
  ["buf format", bin("buf"), ["format", "--diff", "--exit-code"]],
  ...breakingRefs.map((ref) => [`buf breaking against ${ref}`, bin("buf"), ["breaking", "--against", `.git#ref=${ref}`]]),
  ["test vectors fresh", process.execPath, ["--conditions=source", "--import", "tsx", "conformance/vectors/generate.ts", "--check"]],
];
// The steps are independent and each runs on one core (tsc is single-threaded), so they run
// as many at a time as there are cores; each one's output is printed whole when it ends, so
// that a failure reads as if it had run alone.
function runStep([label, cmd, args]) {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", (error) => resolve({ label, ok: false, output: `${output}${error.message}\n` }));
    child.on("close", (code) => resolve({ label: `${label} (${((performance.now() - started) / 1000).toFixed(1)} s)`, ok: code === 0, output }));
  });
}

let next = 0;
let failed = false;
async function worker() {
  while (next < steps.length && !failed) {
    const step = steps[next++];
    const { label, ok, output } = await runStep(step);
    process.stdout.write(`lint: ${label}\n${output}`);
    if (!ok) {
      process.stderr.write(`lint: ${label} failed\n`);
      failed = true;
    }
  }
}
await Promise.all(Array.from({ length: Math.max(1, Math.min(availableParallelism(), steps.length)) }, worker));
if (failed) process.exit(1);
