import { describe, expect, it } from "vitest";
import type { SuiteReport } from "../runner/run-suite.js";
import { formatConsoleSummary } from "./console.js";
import { formatJsonReport } from "./json.js";
import { formatJunitReport } from "./junit.js";
import { requirementUrl } from "./requirement-links.js";

const report: SuiteReport = {
  suiteVersion: "0.1.0",
  requirementsSha256: "ab".repeat(32),
  target: "127.0.0.1:1",
  mode: "attach",
  claimedProfiles: ["core"],
  declaredProfiles: ["core"],
  profileMismatch: undefined,
  implementation: "test",
  results: [
    { id: "append.gap-fails", requirements: ["APPEND-012", "ERR-001"], profile: "core", level: "MUST", status: "fail", durationMs: 3, message: "appended past a gap" },
    { id: "stream.create", requirements: ["STREAM-001"], profile: "core", level: "MUST", status: "pass", durationMs: 1 },
  ],
  errors: [],
  startedAt: "2026-01-01T00:00:00.000Z",
  durationMs: 5,
  serverOutput: undefined,
};

describe("requirement links in reports", () => {
  it("point at the requirement's entry on the docs site, whatever the base URL's trailing slash", () => {
    expect(requirementUrl("APPEND-012", "https://docs.example/continuity/")).toBe("https://docs.example/continuity/requirements/#APPEND-012");
    expect(requirementUrl("APPEND-012", "http://127.0.0.1:4173")).toBe("http://127.0.0.1:4173/requirements/#APPEND-012");
  });

  it("appear under each failure in the console summary, the JSON report and the JUnit report", () => {
    const options = { docsUrl: "https://docs.example" };
    const console = formatConsoleSummary(report, { trace: false, ...options });
    expect(console).toContain("  requirement: https://docs.example/requirements/#APPEND-012\n  requirement: https://docs.example/requirements/#ERR-001");
    expect(console).not.toContain("#STREAM-001");
    expect(console.split("\n").at(-1)).toBe("1 passed, 1 failed, 0 skipped");

    const json = JSON.parse(formatJsonReport(report, options)) as { cases: { id: string; requirementUrls: string[] }[] };
    expect(json.cases.map((c) => [c.id, c.requirementUrls])).toEqual([
      ["append.gap-fails", ["https://docs.example/requirements/#APPEND-012", "https://docs.example/requirements/#ERR-001"]],
      ["stream.create", ["https://docs.example/requirements/#STREAM-001"]],
    ]);

    const junit = formatJunitReport(report, options);
    expect(junit).toContain('<property name="requirement-url" value="https://docs.example/requirements/#APPEND-012"/>');
    expect(junit).toContain('<failure message="appended past a gap" type="MUST">requirement: https://docs.example/requirements/#APPEND-012\nrequirement: https://docs.example/requirements/#ERR-001</failure>');
  });

  it("are left out without a docs URL, so existing reports do not change", () => {
    expect(formatConsoleSummary(report, { trace: false })).not.toContain("requirement:");
    expect(formatJsonReport(report)).not.toContain("requirementUrls");
    expect(formatJunitReport(report)).not.toContain("requirement-url");
    expect(formatJunitReport(report)).toContain('<failure message="appended past a gap" type="MUST"></failure>');
  });
});
