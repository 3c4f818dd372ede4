import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { normalizeAddress, spawnTarget } from "../src/runner/target.js";

// A stand-in "server": prints the runner contract's environment, then the ready line, and
// records the signal it was stopped with, so spawn mode is checked end to end.
const FAKE_SERVER = `
const fs = require("node:fs");
const out = process.env.CONTINUITY_DATA_DIR + "/env.json";
fs.writeFileSync(out, JSON.stringify({ listen: process.env.CONTINUITY_LISTEN, platforms: process.env.CONTINUITY_PLATFORMS, audience: process.env.CONTINUITY_AUDIENCE }));
if (process.env.STORE_LOG) fs.appendFileSync(process.env.STORE_LOG, process.env.CONTINUITY_STORE + "\\n");
process.on("SIGTERM", () => setTimeout(() => { fs.writeFileSync(process.env.SIGNAL_FILE, "SIGTERM"); process.exit(0); }, 300));
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
      // stderr is a pipe of its own: its line may arrive after the ready line on stdout.
      await vi.waitFor(() => expect(target.output()).toContain("some log line on stderr"), { timeout: 10_000 });
      await target.stop();
      // Stopped means the server itself has ended, not only the shell it runs under, so its
      // SIGTERM handler has run (it writes the file, then exits).
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

  it("gives each server on a PostgreSQL store a schema of its own, a new one for wiped data, and drops them at the end", async () => {
    const scratch = await mkdtemp(join(tmpdir(), "target-test-"));
    const database = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
    const client = new pg.Client({ connectionString: database });
    await client.connect();
    try {
      const script = join(scratch, "server.cjs");
      await writeFile(script, FAKE_SERVER);
      const storeLog = join(scratch, "stores");
      const options = { command: `node ${script}`, cwd: scratch, platformsFile: "/x", audience: "continuity", env: { SIGNAL_FILE: join(scratch, "signal"), STORE_LOG: storeLog, CONTINUITY_STORE: `${database}?schema=conftest` } };
      const target = await spawnTarget(options);
      await target.restart!({ wipeData: false, kill: false });
      await target.restart!({ wipeData: true, kill: false });
      const sibling = await target.spawnSibling!();
      const urls = (await readFile(storeLog, "utf8")).trim().split("\n");
      const schemas = urls.map((url) => new URL(url).searchParams.get("schema") ?? "");
      expect(schemas.every((name) => /^conftest_[0-9a-f]{12}$/.test(name))).toBe(true);
      // Same data, same schema; wiped data and another server, new ones.
      expect(schemas[1]).toBe(schemas[0]);
      expect(new Set(schemas).size).toBe(3);
      for (const name of new Set(schemas)) await client.query(`CREATE SCHEMA ${name}`);
      await target.stop();
      await sibling.stop();
      const left = await client.query("SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)", [[...new Set(schemas)]]);
      expect(left.rows).toEqual([]);
    } finally {
      await client.end();
      await rm(scratch, { recursive: true, force: true });
    }
  });

  it("connects over loopback when the server names a wildcard host", () => {
    expect(normalizeAddress("[::]:50051")).toBe("127.0.0.1:50051");
    expect(normalizeAddress("localhost:1")).toBe("localhost:1");
    expect(() => normalizeAddress("no-port")).toThrow();
  });
});
