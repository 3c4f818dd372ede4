import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import type { Database } from "better-sqlite3";
import { afterEach, beforeEach, expect, it } from "vitest";
import { createSqliteStore, type SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { Encoding, Policy } from "../../src/store/types.js";

// ERASE-004 with a second connection reading the store, as a backup tool does: its read
// transaction pins the WAL, so the TRUNCATE checkpoint of an erasure cannot empty it.

const now = new Date("2026-01-01T00:00:00Z");
let dir: string;
let path: string;
let store: SqliteStore;
let reader: Database | undefined;
let pending: string[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "continuity-erasure-wal-"));
  path = join(dir, "db.sqlite");
  pending = [];
  store = createSqliteStore({ path, onPendingScrub: (subject) => pending.push(subject) });
});
afterEach(async () => {
  reader?.close();
  reader = undefined;
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

async function walBytes(): Promise<Buffer> {
  return existsSync(`${path}-wal`) ? readFile(`${path}-wal`) : Buffer.alloc(0);
}

async function subjectWithMarker(subjectId: string, marker: string): Promise<void> {
  const uid = randomUUID();
  await store.createSubjectWithLink({ subjectId, linkId: `l-${subjectId}`, platformId: "p", accountId: subjectId, now });
  await store.createStream({
    subjectId,
    id: "notes",
    uid,
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
    streamUid: uid,
    deviceId: "d",
    clientSequence: 1,
    fingerprint: new Uint8Array([1]),
    expectedVersion: undefined,
    now,
    build: ({ stream }) => ({
      deltas: [{ payload: new TextEncoder().encode(marker), prevHash: stream.headHash, hash: new Uint8Array(32).fill(1) }],
    }),
  });
  expect(result.kind).toBe("committed");
}

/** A second connection in a read transaction, holding a snapshot from before the erasure. */
function openBackupReader(): Database {
  const db = new BetterSqlite3(path, { readonly: true });
  db.exec("BEGIN");
  expect((db.prepare("SELECT COUNT(*) AS n FROM subjects").get() as { n: number }).n).toBeGreaterThan(0);
  return db;
}

async function eventually(condition: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return condition();
}

it("scrubs the WAL as soon as a reader that pinned it during the erasure ends", async () => {
  const marker = `erase-me-${randomUUID()}`;
  await subjectWithMarker("gone", marker);
  expect((await walBytes()).includes(marker)).toBe(true);
  reader = openBackupReader();

  const started = Date.now();
  expect(await store.eraseSubject("gone")).toBe(true);
  // The call waited a bounded time without blocking the event loop, then said so.
  expect(Date.now() - started).toBeLessThan(3000);
  expect(pending).toEqual(["gone"]);
  // The reader really pins the WAL: the erased bytes are still there while it reads.
  expect((await walBytes()).includes(marker)).toBe(true);

  reader.exec("COMMIT");
  expect(await eventually(async () => !(await walBytes()).includes(marker), 3000)).toBe(true);
  expect(store.db.prepare("SELECT 1 FROM meta WHERE key = 'wal_scrub_pending'").get()).toBeUndefined();
});

it("finishes a pending scrub after a restart", async () => {
  const marker = `erase-me-${randomUUID()}`;
  await subjectWithMarker("gone", marker);
  reader = openBackupReader();
  expect(await store.eraseSubject("gone")).toBe(true);
  await store.close();
  // The reader still holds its snapshot, so closing could not checkpoint either.
  expect((await walBytes()).includes(marker)).toBe(true);

  store = createSqliteStore({ path });
  expect((await walBytes()).includes(marker)).toBe(true);
  reader.exec("COMMIT");
  expect(await eventually(async () => !(await walBytes()).includes(marker), 3000)).toBe(true);
});

it("empties the WAL before returning when no reader pins it", async () => {
  const marker = `erase-me-${randomUUID()}`;
  await subjectWithMarker("gone", marker);
  await subjectWithMarker("stays", `kept-${marker}`);
  expect(await store.eraseSubject("gone")).toBe(true);
  expect(pending).toEqual([]);
  expect((await walBytes()).includes(marker)).toBe(false);
  // The other subject's data is untouched, so the search itself is sound.
  expect((await readFile(path)).includes(`kept-${marker}`)).toBe(true);
});
