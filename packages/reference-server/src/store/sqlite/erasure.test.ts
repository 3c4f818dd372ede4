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

const OLD_UID = "00000000-0000-4000-8000-000000000001";

/** A subject "gone" with an opaque stream of `deltas` deltas, each carrying `marker`. */
async function subjectWithDeltas(target: SqliteStore, deltas: number, marker: string): Promise<void> {
  const uid = OLD_UID;
  await target.createSubjectWithLink({ subjectId: "gone", linkId: "l-gone", platformId: "p", accountId: "gone", now });
  await createNotes(target, uid);
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

/**
 * Rows of the subject "gone" in `table`. Deltas are keyed by `stream_keys` (migration 10), whose
 * rows go with the stream's: counted are every delta not of another subject's stream, so that
 * a delta whose key went first is counted too.
 */
const rowsOf = (target: SqliteStore, table: string): number =>
  (
    target.db
      .prepare(
        table === "deltas"
          ? "SELECT COUNT(*) AS n FROM deltas WHERE stream_key NOT IN (SELECT stream_key FROM stream_keys WHERE subject_id <> 'gone')"
          : `SELECT COUNT(*) AS n FROM ${table} WHERE subject_id = 'gone'`,
      )
      .get() as { n: number }
  ).n;

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

// DeleteStream: the same steps for one stream, whose id (unlike a subject's) comes back.

const NEW_UID = "00000000-0000-4000-8000-000000000002";

/** The opaque stream "notes" of the subject "gone". */
function createNotes(target: SqliteStore, uid: string) {
  return target.createStream({
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
}

function appendTo(target: SqliteStore, uid: string, clientSequence: number, payload: string) {
  return target.appendBatch({
    subjectId: "gone",
    streamId: "notes",
    streamUid: uid,
    deviceId: "d",
    clientSequence,
    fingerprint: new Uint8Array([clientSequence]),
    expectedVersion: undefined,
    now,
    build: ({ stream }) => ({ deltas: [{ payload: new TextEncoder().encode(payload), prevHash: stream.headHash, hash: new Uint8Array(32).fill(7) }] }),
  });
}

const turns = (n: number) => (async () => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
})();
const pendingPurges = (target: SqliteStore) => target.db.prepare("SELECT key FROM meta WHERE key LIKE 'stream_purge_pending:%'").all();

it("answers a deleted stream as gone at once, deletes its rows in steps, and a stream created with its id meanwhile waits for them and starts empty", async () => {
  await subjectWithDeltas(store, 2000, "old");
  const deleting = store.deleteStream("gone", "notes", now);
  await turns(5);
  expect(await store.getStream("gone", "notes")).toBeUndefined();
  expect((await store.listStreams("gone", { visibility: { platformId: "p", shared: [] }, type: undefined }, { after: undefined, limit: 10 })).items).toEqual([]);
  expect(rowsOf(store, "deltas")).toBeGreaterThan(1000);
  // An append to the deleted stream finds no stream, and brings none of it back.
  expect((await appendTo(store, OLD_UID, 2, "late")).kind).toBe("stream-not-found");

  let settled = "";
  const recreating = createNotes(store, NEW_UID).then((result) => {
    settled ||= "create";
    return result;
  });
  const deleted = await deleting.then((result) => {
    settled ||= "delete";
    return result;
  });
  expect(deleted?.uid).toBe(OLD_UID);
  expect(rowsOf(store, "deltas")).toBe(0);
  expect(await recreating).toMatchObject({ kind: "created", stream: { uid: NEW_UID, headVersion: 0 } });
  // The creation waited for the old rows, which would otherwise have been the new stream's.
  expect(settled).toBe("delete");

  expect((await appendTo(store, NEW_UID, 1, "new")).kind).toBe("committed");
  expect(rowsOf(store, "deltas")).toBe(1);
  const events = await store.readEvents("gone", 0, 100);
  expect(events.filter((e) => e.body.kind === "stream-deleted").map((e) => (e.body as { stream: { uid: string } }).stream.uid)).toEqual([OLD_UID]);
  expect(pendingPurges(store)).toEqual([]);
});

it("makes a creation that a deletion of the same id overtook wait for that deletion's rows, and keeps the new stream whole", async () => {
  await subjectWithDeltas(store, 200, "old");
  // Both in one turn: the creation finds nothing to wait for, then the deletion starts before
  // its transaction runs.
  const recreating = createNotes(store, NEW_UID);
  const deleting = store.deleteStream("gone", "notes", now);
  expect(await recreating).toMatchObject({ kind: "created", stream: { uid: NEW_UID, headVersion: 0 } });
  expect((await deleting)?.uid).toBe(OLD_UID);
  expect((await appendTo(store, NEW_UID, 1, "new")).kind).toBe("committed");
  await turns(50);
  expect(rowsOf(store, "deltas")).toBe(1);
  expect((await store.listDeltas("gone", "notes", 0, 10)).map((d) => new TextDecoder().decode(d.payload))).toEqual(["new"]);
  expect(pendingPurges(store)).toEqual([]);
});

it("makes an import of a stream that a deletion of the same id overtook wait for that deletion's rows too", async () => {
  await subjectWithDeltas(store, 200, "old");
  const importing = store.importStream({
    subjectId: "gone",
    id: "notes",
    uid: NEW_UID,
    type: "org.example.notes",
    encoding: Encoding.Opaque,
    conflictPolicy: Policy.AllowBlindAppend,
    ownerPlatformId: "p",
    genesisHash: new Uint8Array(32),
    horizonVersion: 0,
    horizonHash: new Uint8Array(32),
    base: { kind: "none" },
    createdAt: now,
    maxStreamsPerSubject: 10,
    now,
  });
  const deleting = store.deleteStream("gone", "notes", now);
  expect(await importing).toMatchObject({ kind: "created", stream: { uid: NEW_UID, headVersion: 0 } });
  expect((await deleting)?.uid).toBe(OLD_UID);
  expect(rowsOf(store, "deltas")).toBe(0);
  expect(pendingPurges(store)).toEqual([]);
});

it("finishes at open a stream deletion a stop cut short, before a stream of its id is created, and leaves that stream alone", async () => {
  const marker = `delete-me-${randomUUID()}`;
  await subjectWithDeltas(store, 2000, marker);
  const deleting = store.deleteStream("gone", "notes", now);
  await turns(5);
  expect(rowsOf(store, "deltas")).toBeGreaterThan(1000);
  // Stopped before the rows are gone: that is no success.
  await store.close();
  await expect(deleting).rejects.toThrow("store is closed");

  store = createSqliteStore({ path: join(dir, "db.sqlite") });
  expect(await store.getStream("gone", "notes")).toBeUndefined();
  expect(rowsOf(store, "deltas")).toBeGreaterThan(1000);
  // Created at once after the open: it waits for the old rows to go, then starts empty.
  expect(await createNotes(store, NEW_UID)).toMatchObject({ kind: "created", stream: { uid: NEW_UID, headVersion: 0 } });
  expect(rowsOf(store, "deltas")).toBe(0);
  expect(pendingPurges(store)).toEqual([]);
  expect((await appendTo(store, NEW_UID, 1, "new")).kind).toBe("committed");
  await turns(50);
  expect(rowsOf(store, "deltas")).toBe(1);
  expect((await store.getStream("gone", "notes"))?.headVersion).toBe(1);
  expect((await store.listDeltas("gone", "notes", 0, 10)).map((d) => new TextDecoder().decode(d.payload))).toEqual(["new"]);
});

it("lets an erasure of the subject take over a stream deletion a stop cut short", async () => {
  await subjectWithDeltas(store, 2000, "old");
  const deleting = store.deleteStream("gone", "notes", now);
  await turns(5);
  await store.close();
  await expect(deleting).rejects.toThrow("store is closed");

  store = createSqliteStore({ path: join(dir, "db.sqlite") });
  expect(await store.eraseSubject("gone")).toBe(true);
  expect(rowsOf(store, "deltas")).toBe(0);
  // Nothing in `meta` names the subject's stream any more (ERASE-004).
  expect(pendingPurges(store)).toEqual([]);
});
