// `pnpm lint`: buf lint, buf format check, and a strict typecheck of every package.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const steps = [
  ["buf lint", bin("buf"), ["lint"]],
  ["buf format", bin("buf"), ["format", "--diff", "--exit-code"]],
  ["typecheck sdk", bin("tsc"), ["-p", "packages/sdk/tsconfig.json"]],
  ["typecheck reference-server", bin("tsc"), ["-p", "packages/reference-server/tsconfig.json"]],
  ["typecheck conformance", bin("tsc"), ["-p", "conformance/tsconfig.json"]],
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
