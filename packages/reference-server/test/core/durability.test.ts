import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createPostgresStore, createSqliteStore, type Store } from "../../src/store/index.js";
import { dropSchema, freshSchemaName, TEST_DATABASE_URL } from "../../src/testing/postgres.js";

const fixture = fileURLToPath(new URL("./fixtures/crash-append.ts", import.meta.url));
const packageDir = fileURLToPath(new URL("../..", import.meta.url));
let dir: string | undefined;
let schema: string | undefined;

afterEach(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  if (schema !== undefined) await dropSchema(schema);
  dir = undefined;
  schema = undefined;
});

/** Runs the crashing writer and returns how many appends it saw acknowledged. */
function crashWriter(target: string, durability: string): Promise<{ acked: number; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", fixture, target, durability], {
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
  const cases: { name: string; open: () => Promise<{ target: string; reopen: () => Promise<Store> }>; durability: string }[] = [
    ...["normal", "full"].map((durability) => ({
      name: `sqlite, ${durability}`,
      durability,
      async open() {
        dir = await mkdtemp(join(tmpdir(), "continuity-crash-"));
        const path = join(dir, "db.sqlite");
        return { target: path, reopen: async () => createSqliteStore({ path }) };
      },
    })),
    {
      name: "postgres",
      durability: "normal",
      async open() {
        schema = freshSchemaName();
        const url = `${TEST_DATABASE_URL}?schema=${schema}`;
        return { target: url, reopen: () => createPostgresStore({ url }) };
      },
    },
  ];
  for (const { name, open, durability } of cases) {
    it(`keeps every acknowledged append after the process is killed (${name})`, async () => {
      const { target, reopen } = await open();
      const { acked, signal } = await crashWriter(target, durability);
      expect(signal).toBe("SIGKILL");
      expect(acked).toBe(20);
      const store = await reopen();
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
