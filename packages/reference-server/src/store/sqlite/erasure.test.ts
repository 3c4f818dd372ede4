import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, expect, it } from "vitest";
import { Encoding, Policy } from "../types.js";
import { createSqliteStore, type SqliteStore } from "./sqlite-store.js";

const now = new Date("2026-01-01T00:00:00Z");
let dir: string;
let store: SqliteStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "continuity-erasure-"));
  store = createSqliteStore({ path: join(dir, "db.sqlite") });
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** Every byte the store keeps on disk: the database file and its write-ahead log. */
async function bytesOnDisk(): Promise<Buffer> {
  const files = ["db.sqlite", "db.sqlite-wal"].map((f) => join(dir, f)).filter((f) => existsSync(f));
  return Buffer.concat(await Promise.all(files.map((f) => readFile(f))));
}

it("leaves none of an erased subject's payloads in the database file or its WAL", async () => {
  const marker = `erase-me-${randomUUID()}`;
  for (const subjectId of ["gone", "stays"]) {
    await store.createSubjectWithLink({ subjectId, linkId: `l-${subjectId}`, platformId: "p", accountId: subjectId, now });
    await store.createStream({
      subjectId,
      id: "notes",
      uid: subjectId === "gone" ? "00000000-0000-4000-8000-000000000001" : "00000000-0000-4000-8000-000000000002",
      type: "org.example.notes",
      encoding: Encoding.Opaque,
      conflictPolicy: Policy.AllowBlindAppend,
      ownerPlatformId: "p",
      genesisHash: new Uint8Array(32),
      initialState: undefined,
      maxStreamsPerSubject: 10,
      now,
    });
    const result = await store.appendBatch({
      subjectId,
      streamId: "notes",
      streamUid: subjectId === "gone" ? "00000000-0000-4000-8000-000000000001" : "00000000-0000-4000-8000-000000000002",
      deviceId: "d",
      clientSequence: 1,
      fingerprint: new Uint8Array([1]),
      expectedVersion: undefined,
      now,
      build: ({ stream }) => ({
        deltas: [{ payload: new TextEncoder().encode(`${subjectId}:${marker}`), prevHash: stream.headHash, hash: new Uint8Array(32).fill(1) }],
      }),
    });
    expect(result.kind).toBe("committed");
  }
  expect((await bytesOnDisk()).includes(`gone:${marker}`)).toBe(true);

  expect(await store.eraseSubject("gone")).toBe(true);

  const disk = await bytesOnDisk();
  expect(disk.includes(`gone:${marker}`)).toBe(false);
  // The other subject's data is untouched, so the search itself is sound.
  expect(disk.includes(`stays:${marker}`)).toBe(true);
});
