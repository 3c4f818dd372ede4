import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createSqliteStore } from "../../src/store/index.js";

const fixture = fileURLToPath(new URL("./fixtures/crash-append.ts", import.meta.url));
const packageDir = fileURLToPath(new URL("../..", import.meta.url));
let dir: string | undefined;

afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Runs the crashing writer and returns how many appends it saw acknowledged. */
function crashWriter(path: string, durability: string): Promise<{ acked: number; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", fixture, path, durability], {
      cwd: packageDir,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (_code, signal) => {
      const match = /ACKED (\d+)/.exec(out);
      resolve({ acked: match === null ? -1 : Number(match[1]), signal });
    });
  });
}

describe("durability", () => {
  for (const durability of ["normal", "full"]) {
    it(`keeps every acknowledged append after the process is killed (${durability})`, async () => {
      dir = await mkdtemp(join(tmpdir(), "continuity-crash-"));
      const path = join(dir, "db.sqlite");
      const { acked, signal } = await crashWriter(path, durability);
      expect(signal).toBe("SIGKILL");
      expect(acked).toBe(20);
      const store = createSqliteStore({ path });
      try {
        const stream = await store.getStream("s1", "st");
        expect(stream?.headVersion).toBe(20);
        expect((await store.listDeltas("s1", "st", 0, 100)).length).toBe(20);
        // The stored outcomes survived with the deltas: a retry is a replay.
        const retry = await store.appendBatch({
          subjectId: "s1",
          streamId: "st",
          streamUid: "00000000-0000-4000-8000-000000000009",
          deviceId: "d3",
          clientSequence: 1,
          fingerprint: new Uint8Array([3]),
          expectedVersion: undefined,
          now: new Date(),
          build: () => {
            throw new Error("a replay must not build");
          },
        });
        expect(retry.kind).toBe("replayed");
      } finally {
        await store.close();
      }
    });
  }
});
