// `pnpm gen`: regenerates everything derived from proto/ and docs/spec/.
// 1. TypeScript messages and nice-grpc service definitions (ts-proto) into packages/sdk/src/gen.
// 2. A binary FileDescriptorSet for server reflection and the conformance suite.
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
// The same descriptor set serves the server's reflection and the conformance suite's
// portability digest; the suite keeps its own copy so it never imports the server.
for (const out of ["packages/reference-server/src/gen/continuity-v1.binpb", "conformance/src/portability/continuity-v1.binpb"]) {
  run(buf, ["build", "--as-file-descriptor-set", "-o", out]);
}
if (existsSync(join(root, "scripts/requirements.mjs"))) {
  run(process.execPath, [join(root, "scripts/requirements.mjs"), "--write"]);
}
if (existsSync(join(root, "scripts/reference.mjs"))) {
  run(process.execPath, [join(root, "scripts/reference.mjs"), "--write"]);
}
