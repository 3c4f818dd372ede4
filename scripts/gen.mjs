// `pnpm gen`: regenerates everything derived from proto/ and docs/spec/.
// 1. TypeScript messages and nice-grpc service definitions (ts-proto) into packages/sdk/src/gen.
// 2. A binary FileDescriptorSet for server reflection into packages/reference-server/src/gen.
// 3. The machine-readable requirement list from the spec (docs/spec/requirements.json).
// 4. The protocol reference from the proto comments (docs/reference/protocol.md).
import { execFileSync } from "node:child_process";
import { mkdirSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const buf = join(root, "node_modules", ".bin", "buf");
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: "inherit" });

run(buf, ["generate"]);
mkdirSync(join(root, "packages/reference-server/src/gen"), { recursive: true });
run(buf, ["build", "--as-file-descriptor-set", "-o", "packages/reference-server/src/gen/continuity-v1.binpb"]);
if (existsSync(join(root, "scripts/requirements.mjs"))) {
  run(process.execPath, [join(root, "scripts/requirements.mjs"), "--write"]);
}
if (existsSync(join(root, "scripts/reference.mjs"))) {
  run(process.execPath, [join(root, "scripts/reference.mjs"), "--write"]);
}
