import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { baselineServer } from "../src/mutants.js";
import { REPO_ROOT } from "../src/run.js";
import { expectWholeSuitePasses, WHOLE_SUITE_TIMEOUT_MS } from "./support/whole-suite.js";

/** Where the whole-suite run on SQLite leaves its JSON report (gitignored). */
const BASELINE_REPORT = join(REPO_ROOT, ".artifacts", "conformance", "reference-server.json");

// The reference server is the suite's first customer: spawned fresh exactly as an implementer's
// server would be, with an empty known-failures file, it must pass every case it claims. The
// same run on PostgreSQL and on two replicas is in the files next to this one, so that vitest
// can run them beside other files. Token expiry (AUTH-003) is in the whole run: in spawn mode
// auth.token-expiry starts a second server with CONTINUITY_ACCESS_TOKEN_SECONDS=5.
describe("the reference server", () => {
  it("passes the whole suite with no known failures", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "conformance-test-"));
    try {
      const reportHtml = join(scratch, "report.html");
      // `pnpm test` hands this report to `conformance:mutants --baseline`, which then need not
      // run the same suite against the same server again: so the server is started as each
      // mutant is, bundled into one file (src/runner/server-bundle.ts), and this run proves that
      // build passes every case. The PostgreSQL run beside it starts a bundle of its own.
      const { report } = await expectWholeSuitePasses({ ...(await baselineServer()), reportHtml, reportJson: BASELINE_REPORT }, ["core", "identity"]);
      // The HTML report names every case and, through the requirement set, each rule's text.
      const html = await readFile(reportHtml, "utf8");
      for (const result of report.results) expect(html).toContain(`id="case-${result.id}"`);
      expect(html).toContain("Passed: ");
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }, WHOLE_SUITE_TIMEOUT_MS);
});
