import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";
import { describe, expect, it } from "vitest";
import { runConformance } from "../src/run.js";
import { parseTargetSecurity } from "../src/harness/security.js";

/** A CA and a certificate it signed for 127.0.0.1 (where the spawned server is dialed), made at test time. */
async function writeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = await generate([{ name: "commonName", value: "conformance test CA" }], {
    keyType: "ec",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, digitalSignature: true, critical: true },
    ],
  });
  const server = await generate([{ name: "commonName", value: "localhost" }], {
    keyType: "ec",
    algorithm: "sha256",
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] },
    ],
  });
  const files = { ca: join(dir, "ca.pem"), cert: join(dir, "server.pem"), key: join(dir, "server.key") };
  await writeFile(files.ca, ca.cert);
  await writeFile(files.cert, server.cert);
  await writeFile(files.key, server.private);
  return files;
}

// A case for each way the suite dials: its client pool, raw calls with health checks, the
// bundle streams, and a restart (the spawned server keeps TLS). A case's own grpc-js client
// (subscription.stalled-reader-is-cut) dials with the same ctx.credentials(), but takes 17 s.
const OVER_EVERY_DIAL = /^(stream\.create-returns-genesis|robustness\.wrong-wire-types-refused|portability\.export-is-complete-and-verifiable|durability\.acknowledged-writes-survive-kill)$/;

describe("a TLS target", () => {
  it("is checked over TLS with --tls and --ca, and refused with a clear error without them", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "conformance-tls-"));
    try {
      const files = await writeCertificates(scratch);
      const spawnEnv = { CONTINUITY_TLS_CERT: files.cert, CONTINUITY_TLS_KEY: files.key };
      const { report } = await runConformance({ tls: true, caFile: files.ca, spawnEnv, filter: OVER_EVERY_DIAL, concurrency: 4 });
      expect(report.results.map((r) => [r.id, r.status, r.message ?? ""]).sort()).toEqual(
        [
          "durability.acknowledged-writes-survive-kill",
          "portability.export-is-complete-and-verifiable",
          "robustness.wrong-wire-types-refused",
          "stream.create-returns-genesis",
        ].map((id) => [id, "pass", ""]),
      );
      await expect(runConformance({ spawnEnv, filter: /^stream\.create-returns-genesis$/ })).rejects.toThrow(/GetServerInfo failed at 127\.0\.0\.1:\d+/);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("--target, --tls and --ca", () => {
  it("dial https:// targets and --tls/--ca with TLS, the rest in plaintext, and refuse http:// with TLS options", async () => {
    expect(await parseTargetSecurity("https://conformance.example:8443", { tls: false, caFile: undefined })).toEqual({ target: "conformance.example:8443", security: { tls: true, ca: undefined } });
    expect(await parseTargetSecurity("localhost:50051", { tls: true, caFile: undefined })).toEqual({ target: "localhost:50051", security: { tls: true, ca: undefined } });
    expect(await parseTargetSecurity("http://localhost:50051", { tls: false, caFile: undefined })).toEqual({ target: "localhost:50051", security: { tls: false, ca: undefined } });
    expect(await parseTargetSecurity(undefined, { tls: false, caFile: undefined })).toEqual({ target: undefined, security: { tls: false, ca: undefined } });
    await expect(parseTargetSecurity("http://localhost:50051", { tls: true, caFile: undefined })).rejects.toThrow(/says plaintext, but --tls\/--ca say TLS/);
  });
});
