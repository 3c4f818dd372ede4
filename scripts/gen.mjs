// `pnpm gen`: regenerates everything derived from proto/ and docs/spec/.
// 1. TypeScript messages and nice-grpc service definitions (ts-proto) into packages/sdk/src/gen.
// 2. A binary FileDescriptorSet for server reflection and the conformance suite.
// 3. The machine-readable requirement list from the spec (docs/spec/requirements.json).
// 4. The protocol reference from the proto comments (docs/reference/protocol.md).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const buf = join(root, "node_modules", ".bin", "buf");
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: "inherit" });

run(buf, ["generate"]);
mkdirSync(join(root, "packages/reference-server/src/gen"), { recursive: true });
// The conformance suite computes the portability digest from the protocol's descriptor set
// and keeps its own copy, so that it never imports the server.
run(buf, ["build", "--as-file-descriptor-set", "-o", "conformance/src/portability/continuity-v1.binpb"]);
// @continuity/bundle needs the same descriptors for the proto3 JSON form of bundle records.
writeFileSync(join(root, "packages/bundle/src/continuity-v1.binpb"), readFileSync(join(root, "conformance/src/portability/continuity-v1.binpb")));
// Server reflection also describes grpc.health.v1, so that grpcurl and `buf curl` can call
// health without a local proto. A FileDescriptorSet is one repeated field, so two serialized
// sets concatenated are their union.
const scratch = mkdtempSync(join(tmpdir(), "continuity-gen-"));
try {
  run(buf, ["build", "node_modules/grpc-health-check/proto", "--as-file-descriptor-set", "-o", join(scratch, "health.binpb")]);
  writeFileSync(
    join(root, "packages/reference-server/src/gen/continuity-v1.binpb"),
    Buffer.concat([
      readFileSync(join(root, "conformance/src/portability/continuity-v1.binpb")),
      readFileSync(join(scratch, "health.binpb")),
    ]),
  );
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
if (existsSync(join(root, "scripts/requirements.mjs"))) {
  run(process.execPath, [join(root, "scripts/requirements.mjs"), "--write"]);
}
if (existsSync(join(root, "scripts/reference.mjs"))) {
  run(process.execPath, [join(root, "scripts/reference.mjs"), "--write"]);
}
