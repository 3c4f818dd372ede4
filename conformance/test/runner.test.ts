import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "nice-grpc";
import { continuity } from "@continuity/sdk/gen";
import { defineCase } from "../src/harness/define-case.js";
import { fail } from "../src/harness/expect.js";
import { generatePlatformKeySet, type PlatformKeySet } from "../src/fixtures/platform-keys.js";
import { formatConsoleSummary } from "../src/reporters/console.js";
import { formatJsonReport } from "../src/reporters/json.js";
import { formatJunitReport } from "../src/reporters/junit.js";
import { runSucceeded } from "../src/reporters/summary.js";
import type { RequirementSet } from "../src/runner/requirements.js";
import { runSuite, type SuiteOptions } from "../src/runner/run-suite.js";
import { attachTarget } from "../src/runner/target.js";

const v1 = continuity.v1;

// A server that only answers GetServerInfo: enough for the runner, and it lets synthetic
// cases decide their own outcome so each status path is exercised for real.
let server: Server;
let address: string;
let platforms: PlatformKeySet;

beforeAll(async () => {
  server = createServer();
  server.add(v1.ServerInfoServiceDefinition, {
    async getServerInfo() {
      return {
        protocolVersions: ["1"],
        profiles: [v1.Profile.PROFILE_CORE],
        limits: { maxDeltaBytes: 65536, maxBatchDeltas: 100, maxBatchBytes: 65536, maxResumePayloadBytes: 4096, maxStreamsPerSubject: 100, maxChunkBytes: 1024, maxSnapshotBytes: 1n << 20n, maxPageSize: 100, maxCheckpointStreams: 16, accessTokenSeconds: 900 },
        assertionAudience: "continuity",
        implementation: "runner-test",
        epoch: "e1",
      };
    },
  });
  const port = await server.listen("127.0.0.1:0");
  address = `127.0.0.1:${port}`;
  platforms = await generatePlatformKeySet();
});

afterAll(async () => {
  await server.shutdown();
});

const requirements: RequirementSet = {
  byId: new Map([
    ["GEN-001", { id: "GEN-001", level: "MUST", profile: "core", file: "x.md", section: "s", text: "t" }],
    ["GEN-020", { id: "GEN-020", level: "SHOULD", profile: "core", file: "x.md", section: "s", text: "t" }],
  ]),
  sha256: "ab".repeat(32),
  path: "memory",
};

const cases = [
  defineCase({ id: "demo.passes", requirements: ["GEN-001"], profile: "core", run: async (ctx) => void (await ctx.clients().serverInfo.getServerInfo({})) }),
  defineCase({ id: "demo.must-fails", requirements: ["GEN-001"], profile: "core", run: async () => fail("server did the wrong thing") }),
  defineCase({ id: "demo.should-fails", requirements: ["GEN-020"], profile: "core", run: async () => fail("not quite") }),
  defineCase({ id: "demo.harness-breaks", requirements: ["GEN-001"], profile: "core", run: async () => { throw new TypeError("bug in the case"); } }),
  defineCase({ id: "demo.identity-only", requirements: ["GEN-001"], profile: "identity", run: async () => fail("must not run") }),
  defineCase({ id: "demo.known-and-failing", requirements: ["GEN-001"], profile: "core", run: async () => fail("known") }),
  defineCase({ id: "demo.known-but-passing", requirements: ["GEN-001"], profile: "core", run: async () => {} }),
  defineCase({ id: "demo.hangs", requirements: ["GEN-001"], profile: "core", timeoutMs: 200, run: () => new Promise(() => {}) }),
  defineCase({ id: "demo.unary-grpc-error", requirements: ["GEN-001"], profile: "core", run: async (ctx) => void (await ctx.clients().streams.getStream({ name: "x" })) }),
];

function options(overrides: Partial<SuiteOptions> = {}): SuiteOptions {
  return {
    target: attachTarget(address),
    platforms,
    audience: undefined,
    claimedProfiles: undefined,
    cases,
    filter: undefined,
    concurrency: 4,
    knownFailures: new Map([
      ["demo.known-and-failing", "tracked upstream"],
      ["demo.known-but-passing", "was broken once"],
    ]),
    requirements,
    bail: false,
    ...overrides,
  };
}

describe("runSuite", () => {
  it("gives every case the status its outcome and level call for", async () => {
    const report = await runSuite(options());
    const status = Object.fromEntries(report.results.map((r) => [r.id, r.status]));
    expect(status).toEqual({
      "demo.passes": "pass",
      "demo.must-fails": "fail",
      "demo.should-fails": "warn",
      "demo.harness-breaks": "error",
      "demo.identity-only": "skip",
      "demo.known-and-failing": "expected-fail",
      "demo.known-but-passing": "unexpected-pass",
      "demo.hangs": "fail",
      "demo.unary-grpc-error": "fail",
    });
    expect(report.results.find((r) => r.id === "demo.unary-grpc-error")?.trace).toContain("/continuity.v1.StreamService/GetStream");
    expect(runSucceeded(report)).toBe(false);
    expect(report.declaredProfiles).toEqual(["core"]);
  });

  it("fails the run on a stale known-failure entry and on a claimed but undeclared profile", async () => {
    const report = await runSuite(options({ cases: [cases[0]!], knownFailures: new Map([["demo.removed-long-ago", "old"]]), claimedProfiles: ["core", "identity"] }));
    expect(report.results.map((r) => r.status)).toEqual(["pass"]);
    expect(report.errors.some((e) => e.includes("demo.removed-long-ago"))).toBe(true);
    expect(report.profileMismatch).toContain("identity");
    expect(runSucceeded(report)).toBe(false);
  });

  it("succeeds when only passes, warnings, skips and expected failures remain", async () => {
    const report = await runSuite(options({ cases: [cases[0]!, cases[2]!, cases[4]!, cases[5]!], knownFailures: new Map([["demo.known-and-failing", "tracked"]]) }));
    expect(runSucceeded(report)).toBe(true);
    expect(formatConsoleSummary(report, { trace: false }).split("\n").at(-1)).toBe("1 passed, 0 failed, 1 skipped");
  });

  it("writes reports that name the requirement set and every case", async () => {
    const report = await runSuite(options({ filter: /^demo\.(passes|must-fails|harness-breaks)$/ }));
    const json = JSON.parse(formatJsonReport(report)) as { requirementsSha256: string; cases: { id: string; requirements: string[]; status: string }[] };
    expect(json.requirementsSha256).toBe("ab".repeat(32));
    expect(json.cases.map((c) => [c.id, c.status])).toEqual([["demo.passes", "pass"], ["demo.must-fails", "fail"], ["demo.harness-breaks", "error"]]);
    const junit = formatJunitReport(report);
    expect(junit.startsWith('<?xml version="1.0" encoding="UTF-8"?>')).toBe(true);
    expect(junit.match(/<testcase /g)).toHaveLength(3);
    expect(junit).toContain('<failure message="server did the wrong thing" type="MUST">');
    expect(junit).toMatch(/<testsuites [^>]*failures="1" errors="1"/);
    // Every opened element is closed: a cheap well-formedness check without an XML parser.
    for (const tag of ["testsuites", "testsuite", "testcase", "properties"]) {
      expect(junit.match(new RegExp(`<${tag}[ >]`, "g"))?.length).toBe(junit.match(new RegExp(`</${tag}>`, "g"))?.length);
    }
  });

  it("multiplies each case's time limit by timeoutScale, and ends a hung case at the scaled limit", async () => {
    // Takes 300 ms: past its 200 ms limit, within twice it.
    const slow = defineCase({ id: "demo.slow", requirements: ["GEN-001"], profile: "core", timeoutMs: 200, run: () => new Promise((resolve) => setTimeout(resolve, 300)) });
    const hung = cases.find((c) => c.id === "demo.hangs")!;
    const unscaled = await runSuite(options({ cases: [slow], knownFailures: new Map() }));
    expect(unscaled.results.map((r) => [r.status, r.message])).toEqual([["fail", "case did not finish within 200 ms"]]);
    const scaled = await runSuite(options({ cases: [slow, hung], knownFailures: new Map(), timeoutScale: 2 }));
    expect(scaled.results.map((r) => [r.id, r.status, r.message])).toEqual([
      ["demo.slow", "pass", undefined],
      ["demo.hangs", "fail", "case did not finish within 400 ms"],
    ]);
  });

  it("stops at the first MUST failure with bail", async () => {
    const report = await runSuite(options({ cases: [cases[1]!, ...Array.from({ length: 5 }, (_, i) => defineCase({ id: `demo.later-${i}`, requirements: ["GEN-001"], profile: "core", run: async () => {} }))], concurrency: 1, bail: true }));
    expect(report.results.map((r) => r.status)).toEqual(["fail", "skip", "skip", "skip", "skip", "skip"]);
  });

  it("runs the cases named first before all others, exclusive ones too, and the rest only when they catch nothing", async () => {
    const later = Array.from({ length: 4 }, (_, i) => defineCase({ id: `demo.later-${i}`, requirements: ["GEN-001"], profile: "core", run: async () => {} }));
    const alone = (id: string, run: () => Promise<void>) => defineCase({ id, requirements: ["GEN-001"], profile: "core", exclusive: true, run });
    const started: string[] = [];
    const failing = await runSuite(options({ cases: [...later, alone("demo.catches", async () => fail("caught"))], first: ["demo.catches"], knownFailures: new Map(), bail: true, onCaseStart: (id) => started.push(id) }));
    expect(started).toEqual(["demo.catches"]);
    expect(failing.results.map((r) => [r.id, r.status])).toEqual([...later.map((c) => [c.id, "skip"]), ["demo.catches", "fail"]]);
    expect(failing.errors).toEqual([]);
    started.length = 0;
    // A hint that no longer catches costs nothing but its own run: every other case still runs.
    const passing = await runSuite(options({ cases: [...later, alone("demo.misses", async () => {})], first: ["demo.misses", "demo.gone"], knownFailures: new Map(), bail: true, onCaseStart: (id) => started.push(id) }));
    expect(started[0]).toBe("demo.misses");
    expect(started.toSorted()).toEqual(["demo.later-0", "demo.later-1", "demo.later-2", "demo.later-3", "demo.misses"]);
    expect(passing.results.map((r) => r.status)).toEqual(["pass", "pass", "pass", "pass", "pass"]);
    expect(passing.errors).toEqual(['the cases to run first name unknown case "demo.gone"']);
  });
});
