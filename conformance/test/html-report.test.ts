import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "nice-grpc";
import { continuity } from "@continuity/sdk/gen";
import { defineCase } from "../src/harness/define-case.js";
import { fail } from "../src/harness/expect.js";
import { generatePlatformKeySet, type PlatformKeySet } from "../src/fixtures/platform-keys.js";
import { formatHtmlReport } from "../src/reporters/html.js";
import type { RequirementSet } from "../src/runner/requirements.js";
import { runSuite } from "../src/runner/run-suite.js";
import { attachTarget } from "../src/runner/target.js";

const v1 = continuity.v1;

// A server that answers only GetServerInfo: every other call fails with UNIMPLEMENTED, which
// gives a failing case a real wire exchange to show.
let server: Server;
let address: string;
let platforms: PlatformKeySet;

beforeAll(async () => {
  server = createServer();
  server.add(v1.ServerInfoServiceDefinition, {
    async getServerInfo() {
      return {
        protocolVersions: ["1"],
        profiles: [v1.Profile.PROFILE_CORE, v1.Profile.PROFILE_IDENTITY],
        limits: { maxDeltaBytes: 65536, maxBatchDeltas: 100, maxBatchBytes: 65536, maxResumePayloadBytes: 4096, maxStreamsPerSubject: 100, maxChunkBytes: 1024, maxSnapshotBytes: 1n << 20n, maxPageSize: 100, maxCheckpointStreams: 16, accessTokenSeconds: 900 },
        assertionAudience: "continuity",
        implementation: "html-<test>",
        epoch: "e1",
      };
    },
  });
  address = `127.0.0.1:${await server.listen("127.0.0.1:0")}`;
  platforms = await generatePlatformKeySet();
});

afterAll(async () => {
  await server.shutdown();
});

const requirements: RequirementSet = {
  byId: new Map([
    ["GEN-001", { id: "GEN-001", level: "MUST", profile: "core", file: "x.md", section: "s", text: "Servers answer <everything>." }],
    ["GEN-002", { id: "GEN-002", level: "MUST", profile: "core", file: "x.md", section: "s", text: "Second rule." }],
    ["GEN-020", { id: "GEN-020", level: "SHOULD", profile: "core", file: "x.md", section: "s", text: "Nice to have." }],
    ["AUTH-001", { id: "AUTH-001", level: "MUST", profile: "identity", file: "y.md", section: "s", text: "Tokens." }],
  ]),
  sha256: "cd".repeat(32),
  path: "memory",
};

const cases = [
  defineCase({ id: "demo.passes", requirements: ["GEN-001"], profile: "core", run: async (ctx) => ctx.note(`server said ${(await ctx.clients().serverInfo.getServerInfo({})).implementation}`) }),
  defineCase({ id: "demo.stream-missing", requirements: ["GEN-001", "GEN-002"], profile: "core", run: async (ctx) => void (await ctx.clients().streams.getStream({ name: "subjects/x/streams/y" })) }),
  defineCase({ id: "demo.should-deviates", requirements: ["GEN-020"], profile: "core", run: async () => fail("expected <b>bold</b> & more") }),
  defineCase({ id: "demo.identity", requirements: ["AUTH-001"], profile: "identity", run: async () => {} }),
];

async function html(): Promise<string> {
  const report = await runSuite({
    target: attachTarget(address),
    platforms,
    audience: undefined,
    claimedProfiles: undefined,
    cases,
    filter: undefined,
    concurrency: 2,
    knownFailures: new Map(),
    requirements,
    bail: false,
  });
  return formatHtmlReport(report, { requirements, docsUrl: "https://docs.example/" });
}

/** The section of the page between two markers. */
function between(page: string, start: string, end: string): string {
  const from = page.indexOf(start);
  expect(from).toBeGreaterThanOrEqual(0);
  const to = page.indexOf(end, from + start.length);
  return page.slice(from, to === -1 ? undefined : to);
}

describe("the HTML report", () => {
  it("shows the verdict and, per profile, every requirement with the worst status of its cases", async () => {
    const page = await html();
    expect(page.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(page).toContain("Failed: 2 passed, 1 failed, 0 skipped (1 warned");
    expect(page).toContain("cd".repeat(32));
    const core = between(page, '<section id="profile-core">', "</section>");
    const identity = between(page, '<section id="profile-identity">', "</section>");
    const row = (section: string, id: string) => between(section, `<a href="https://docs.example/requirements/#${id}">${id}</a>`, "</tr>");
    // GEN-001 is proven by a passing and a failing case: the failure wins.
    expect(row(core, "GEN-001")).toContain("status-fail");
    expect(row(core, "GEN-001")).toContain("demo.passes");
    expect(row(core, "GEN-001")).toContain("demo.stream-missing");
    expect(row(core, "GEN-001")).toContain("Servers answer &lt;everything&gt;.");
    expect(row(core, "GEN-020")).toContain(">warn<");
    expect(row(identity, "AUTH-001")).toContain(">pass<");
    expect(core).not.toContain("AUTH-001");
  });

  it("gives each case its evidence, and a failing case its wire exchange, escaped", async () => {
    const page = await html();
    const passing = between(page, '<details id="case-demo.passes"', "</details>");
    expect(passing).toContain("server said html-&lt;test&gt;");
    expect(passing).not.toContain("Wire exchange");
    expect(passing).not.toContain(" open>");
    const failing = between(page, '<details id="case-demo.stream-missing"', "</details>");
    expect(failing).toContain(" open>");
    expect(failing).toContain("Wire exchange");
    expect(failing).toContain("/continuity.v1.StreamService/GetStream");
    expect(failing).toContain("UNIMPLEMENTED");
    const warned = between(page, '<details id="case-demo.should-deviates"', "</details>");
    expect(warned).toContain("expected &lt;b&gt;bold&lt;/b&gt; &amp; more");
    expect(page).not.toContain("<b>bold</b>");
    // Every element the report opens is closed again.
    for (const tag of ["section", "table", "tr", "td", "details", "summary", "pre", "ul", "li", "p", "dl"]) {
      expect(page.match(new RegExp(`<${tag}[ >]`, "g"))?.length, tag).toBe(page.match(new RegExp(`</${tag}>`, "g"))?.length);
    }
  });
});
