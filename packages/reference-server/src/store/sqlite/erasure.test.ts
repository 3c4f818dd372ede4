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

/** A subject "gone" with an opaque stream of `deltas` deltas, each carrying `marker`. */
async function subjectWithDeltas(target: SqliteStore, deltas: number, marker: string): Promise<void> {
  const uid = "00000000-0000-4000-8000-000000000001";
  await target.createSubjectWithLink({ subjectId: "gone", linkId: "l-gone", platformId: "p", accountId: "gone", now });
  await target.createStream({
    subjectId: "gone",
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
  const result = await target.appendBatch({
    subjectId: "gone",
    streamId: "notes",
    streamUid: uid,
    deviceId: "d",
    clientSequence: 1,
    fingerprint: new Uint8Array([1]),
    expectedVersion: undefined,
    now,
    build: ({ stream }) => ({
      deltas: Array.from({ length: deltas }, (_, i) => ({
        payload: new TextEncoder().encode(`${marker}:${i}`),
        prevHash: i === 0 ? stream.headHash : new Uint8Array(32).fill(i % 250),
        hash: new Uint8Array(32).fill((i + 1) % 250),
      })),
    }),
  });
  expect(result.kind).toBe("committed");
}

const rowsOf = (target: SqliteStore, table: string): number =>
  (target.db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE subject_id = 'gone'`).get() as { n: number }).n;

it("answers the subject as erased at once, deletes its rows in steps, and a stop mid-way is finished when the store opens", async () => {
  const marker = `erase-me-${randomUUID()}`;
  await subjectWithDeltas(store, 2000, marker);
  const erasing = store.eraseSubject("gone");
  // A few turns in: the subject is unreachable while most of its deltas are still there.
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  expect(await store.getSubject("gone")).toBeUndefined();
  expect(await store.findAccountLink("p", "gone")).toBeUndefined();
  expect(await store.getStream("gone", "notes")).toBeUndefined();
  expect(rowsOf(store, "deltas")).toBeGreaterThan(1000);
  // Stopped before the rows are gone: that is no success.
  await store.close();
  await expect(erasing).rejects.toThrow("store is closed");

  store = createSqliteStore({ path: join(dir, "db.sqlite") });
  expect(await store.getSubject("gone")).toBeUndefined();
  for (let turns = 0; rowsOf(store, "deltas") > 0 && turns < 10_000; turns++) await new Promise((resolve) => setImmediate(resolve));
  expect(rowsOf(store, "deltas")).toBe(0);
  // The sweep scrubs the WAL once the rows are gone.
  for (let turns = 0; (await bytesOnDisk()).includes(marker) && turns < 100; turns++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect((await bytesOnDisk()).includes(marker)).toBe(false);
  expect(store.db.prepare("SELECT key FROM meta WHERE key LIKE 'erasure_pending:%'").all()).toEqual([]);
});

it("finishes at open an erasure a stop cut short before the subject's own row was deleted", async () => {
  const marker = `erase-me-${randomUUID()}`;
  await subjectWithDeltas(store, 40, marker);
  // What detach's first transaction leaves when the process stops right after it: the
  // record and the subject row, no stream row (foreign keys off), every delta.
  store.db.pragma("foreign_keys = OFF");
  store.db.transaction(() => {
    store.db.prepare("INSERT INTO meta (key, value) VALUES ('erasure_pending:gone', X'31')").run();
    store.db.prepare("DELETE FROM streams WHERE subject_id = 'gone'").run();
  })();
  store.db.pragma("foreign_keys = ON");
  await store.close();

  store = createSqliteStore({ path: join(dir, "db.sqlite") });
  // Unreachable before the store answers anything.
  expect(await store.getSubject("gone")).toBeUndefined();
  expect(await store.findAccountLink("p", "gone")).toBeUndefined();
  for (let turns = 0; (rowsOf(store, "deltas") > 0 || (await bytesOnDisk()).includes(marker)) && turns < 200; turns++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(rowsOf(store, "deltas")).toBe(0);
  expect((await bytesOnDisk()).includes(marker)).toBe(false);
});
