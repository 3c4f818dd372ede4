import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { normalizeAddress, spawnTarget } from "../src/runner/target.js";

// A stand-in "server": prints the runner contract's environment, then the ready line, and
// records the signal it was stopped with, so spawn mode is checked end to end.
const FAKE_SERVER = `
const fs = require("node:fs");
const out = process.env.CONTINUITY_DATA_DIR + "/env.json";
fs.writeFileSync(out, JSON.stringify({ listen: process.env.CONTINUITY_LISTEN, platforms: process.env.CONTINUITY_PLATFORMS, audience: process.env.CONTINUITY_AUDIENCE }));
process.on("SIGTERM", () => { fs.writeFileSync(process.env.SIGNAL_FILE, "SIGTERM"); process.exit(0); });
console.error("some log line on stderr");
console.log("CONTINUITY_LISTENING=0.0.0.0:4321");
setInterval(() => {}, 1000);
`;

describe("spawn mode", () => {
  it("passes the contract environment, waits for the ready line and stops with SIGTERM", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "target-test-"));
    try {
      const script = join(scratch, "server.cjs");
      await writeFile(script, FAKE_SERVER);
      const signalFile = join(scratch, "signal");
      const target = await spawnTarget({ command: `node ${script}`, cwd: scratch, platformsFile: "/tmp/platforms.json", audience: "continuity", env: { SIGNAL_FILE: signalFile } });
      expect(target.address()).toBe("127.0.0.1:4321");
      expect(target.output()).toContain("some log line on stderr");
      await target.stop();
      expect(await readFile(signalFile, "utf8")).toBe("SIGTERM");
      expect(target.crashed()).toBe(false);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("reports a server that dies before it is ready, with its output", async () => {
    await expect(spawnTarget({ command: `node -e "console.error('boom: bad config'); process.exit(3)"`, cwd: tmpdir(), platformsFile: "/x", audience: "continuity" })).rejects.toThrow(/exited before it was ready[\s\S]*boom: bad config/);
  });

  it("gives up on a server that never prints the ready line", async () => {
    await expect(spawnTarget({ command: `node -e "setInterval(() => {}, 1000)"`, cwd: tmpdir(), platformsFile: "/x", audience: "continuity", readyTimeoutMs: 500 })).rejects.toThrow(/no CONTINUITY_LISTENING= line within 500 ms/);
  });

  it("connects over loopback when the server names a wildcard host", () => {
    expect(normalizeAddress("[::]:50051")).toBe("127.0.0.1:50051");
    expect(normalizeAddress("localhost:1")).toBe("localhost:1");
    expect(() => normalizeAddress("no-port")).toThrow();
  });
});
