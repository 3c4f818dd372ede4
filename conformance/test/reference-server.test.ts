import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT, runConformance } from "../src/run.js";

/** Where the whole-suite run on SQLite leaves its JSON report (gitignored). */
const BASELINE_REPORT = join(REPO_ROOT, ".artifacts", "conformance", "reference-server.json");

// The reference server is the suite's first customer: spawned fresh exactly as an implementer's
// server would be, with an empty known-failures file, it must pass every case it claims.
describe("the reference server", () => {
  it("passes the whole suite with no known failures", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "conformance-test-"));
    try {
      const knownFailures = join(scratch, "known-failures.json");
      await writeFile(knownFailures, "[]\n");
      const reportHtml = join(scratch, "report.html");
      // `pnpm test` hands this report to `conformance:mutants --baseline`, which then need not
      // run the same suite against the same server again.
      const { report, succeeded } = await runConformance({ knownFailuresFile: knownFailures, concurrency: 6, reportHtml, reportJson: BASELINE_REPORT });
      const problems = report.results.filter((r) => r.status === "fail" || r.status === "error" || r.status === "warn").map((r) => `${r.status} ${r.id}: ${r.message ?? ""}`);
      expect([...problems, ...report.errors]).toEqual([]);
      expect(report.claimedProfiles).toEqual(expect.arrayContaining(["core", "identity"]));
      expect(report.results.filter((r) => r.status === "pass").length).toBeGreaterThan(50);
      expect(succeeded).toBe(true);
      // The HTML report names every case and, through the requirement set, each rule's text.
      const html = await readFile(reportHtml, "utf8");
      for (const result of report.results) expect(html).toContain(`id="case-${result.id}"`);
      expect(html).toContain("Passed: ");
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    // Bounds only a hung run: the suite takes about two minutes on a quiet 2-core machine.
  }, 480_000);

  it("passes the whole suite on PostgreSQL too (CONTINUITY_STORE, a schema per spawned server)", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "conformance-test-"));
    try {
      const knownFailures = join(scratch, "known-failures.json");
      await writeFile(knownFailures, "[]\n");
      const store = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
      const { report, succeeded } = await runConformance({ knownFailuresFile: knownFailures, concurrency: 6, spawnEnv: { CONTINUITY_STORE: store } });
      const problems = report.results.filter((r) => r.status === "fail" || r.status === "error" || r.status === "warn").map((r) => `${r.status} ${r.id}: ${r.message ?? ""}`);
      expect([...problems, ...report.errors]).toEqual([]);
      expect(report.claimedProfiles).toEqual(expect.arrayContaining(["core", "identity", "portability"]));
      expect(report.results.filter((r) => r.status === "pass").length).toBeGreaterThan(50);
      expect(succeeded).toBe(true);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }, 480_000);

  it("passes the whole suite against two replicas on one PostgreSQL schema, behind the per-call round-robin proxy", async () => {
    // `start --replicas 2`: a supervisor runs two servers on the schema and the proxy sends each
    // call to the other one, so every case that writes and then reads crosses replicas, and
    // what the suite restarts or kills is the whole deployment.
    const scratch = await mkdtemp(join(tmpdir(), "conformance-test-"));
    try {
      const knownFailures = join(scratch, "known-failures.json");
      await writeFile(knownFailures, "[]\n");
      const store = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
      const { report, succeeded } = await runConformance({ knownFailuresFile: knownFailures, concurrency: 6, spawnEnv: { CONTINUITY_STORE: store, CONTINUITY_REPLICAS: "2" } });
      const problems = report.results.filter((r) => r.status === "fail" || r.status === "error" || r.status === "warn").map((r) => `${r.status} ${r.id}: ${r.message ?? ""}`);
      expect([...problems, ...report.errors]).toEqual([]);
      expect(report.claimedProfiles).toEqual(expect.arrayContaining(["core", "identity", "portability"]));
      expect(report.results.filter((r) => r.status === "pass").length).toBeGreaterThan(50);
      expect(succeeded).toBe(true);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }, 480_000);

  it("refuses access tokens from the second they expire (AUTH-003, run with 5-second tokens)", async () => {
    const { report } = await runConformance({ spawnEnv: { CONTINUITY_ACCESS_TOKEN_SECONDS: "5" }, filter: /^auth\.token-expiry$/ });
    expect(report.results.map((r) => [r.id, r.status, r.message ?? ""])).toEqual([["auth.token-expiry", "pass", ""]]);
  }, 60_000);
});
