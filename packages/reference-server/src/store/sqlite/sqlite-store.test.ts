import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AppendInput, AppendResult, BuiltBatch, StoreNotification } from "../types.js";
import { Encoding, Policy } from "../types.js";
import { describeStoreContract } from "../../testing/store-contract.js";
import { MIGRATIONS } from "./migrations.js";
import { createSqliteStore, type SqliteStore } from "./sqlite-store.js";

const now = new Date("2026-01-01T00:00:00Z");
const hash = (n: number) => new Uint8Array(32).fill(n);

let dir: string;
let store: SqliteStore;
let groups: number[];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "continuity-store-"));
  groups = [];
  store = createSqliteStore({ path: join(dir, "db.sqlite"), onGroupCommit: (n) => groups.push(n) });
  await store.createSubjectWithLink({ subjectId: "s1", linkId: "l1", platformId: "p", accountId: "acct", now });
  await store.createStream({
    subjectId: "s1",
    id: "opaque",
    uid: "00000000-0000-4000-8000-000000000001",
    type: "org.example.t",
    encoding: Encoding.Opaque,
    conflictPolicy: Policy.AllowBlindAppend,
    ownerPlatformId: "p",
    genesisHash: hash(0),
    initialState: undefined,
    maxStreamsPerSubject: 10,
    now,
  });
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

/** An append whose deltas carry their version as hash byte, so order is visible. */
function opaqueAppend(device: string, seq: number, overrides: Partial<AppendInput> = {}): Promise<AppendResult> {
  return store.appendBatch({
    subjectId: "s1",
    streamId: "opaque",
    streamUid: "00000000-0000-4000-8000-000000000001",
    deviceId: device,
    clientSequence: seq,
    fingerprint: new Uint8Array([seq]),
    expectedVersion: undefined,
    now,
    build: ({ stream }): BuiltBatch => ({
      deltas: [{ payload: new Uint8Array([seq]), prevHash: stream.headHash, hash: hash(stream.headVersion + 1) }],
    }),
    ...overrides,
  });
}

describe("appendBatch group commit", () => {
  it("commits appends arriving together in one transaction, each with its own outcome", async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => opaqueAppend(`d${i}`, 1)));
    expect(groups).toEqual([10]);
    expect(results.map((r) => r.kind)).toEqual(Array(10).fill("committed"));
    const versions = results.map((r) => (r.kind === "committed" ? r.outcome.headVersion : 0));
    expect([...versions].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect((await store.getStream("s1", "opaque"))?.headVersion).toBe(10);
  });

  it("does not let a failing append fail or leak into its neighbours", async () => {
    const [ok1, refused, broken, conflict, ok2] = await Promise.all([
      opaqueAppend("a", 1),
      opaqueAppend("b", 1, { build: () => { throw new Error("refused by build"); } }),
      // Writes one delta, then fails on the second insert: the savepoint must undo the first.
      opaqueAppend("c", 1, {
        build: ({ stream }) => ({
          deltas: [
            { payload: new Uint8Array([1]), prevHash: stream.headHash, hash: hash(90) },
            { payload: undefined as unknown as Uint8Array, prevHash: hash(90), hash: hash(91) },
          ],
        }),
      }),
      opaqueAppend("d", 1, { expectedVersion: 0 }),
      opaqueAppend("e", 1),
    ]);
    expect(groups).toEqual([5]);
    expect(ok1?.kind).toBe("committed");
    expect(refused).toMatchObject({ kind: "rejected" });
    expect(broken).toMatchObject({ kind: "rejected" });
    expect(conflict).toMatchObject({ kind: "version-conflict", headVersion: 1 });
    expect(ok2?.kind).toBe("committed");
    const deltas = await store.listDeltas("s1", "opaque", 0, 100);
    expect(deltas.map((d) => [d.version, d.deviceId])).toEqual([
      [1, "a"],
      [2, "e"],
    ]);
    expect(deltas.some((d) => Buffer.from(d.hash).equals(Buffer.from(hash(90))))).toBe(false);
    // Refused appends consumed no client sequence: device b can still use 1.
    expect((await opaqueAppend("b", 1)).kind).toBe("committed");
  });

  it("stores the outcome with the deltas and replays it for the same fingerprint only", async () => {
    const first = await opaqueAppend("a", 1);
    const replay = await opaqueAppend("a", 1);
    const hex = (r: AppendResult) =>
      r.kind === "committed" || r.kind === "replayed"
        ? { v: r.outcome.headVersion, h: Buffer.from(r.outcome.headHash).toString("hex"), r: r.outcome.receipts.map((x) => [x.version, Buffer.from(x.hash).toString("hex")]) }
        : r.kind;
    expect(replay.kind).toBe("replayed");
    expect(hex(replay)).toEqual(hex(first));
    expect(await opaqueAppend("a", 1, { fingerprint: new Uint8Array([9]) })).toEqual({ kind: "sequence-reused", clientSequence: 1, expectedSequence: 2 });
    expect(await opaqueAppend("a", 3)).toEqual({ kind: "sequence-gap", expectedSequence: 2 });
  });

  it("writes the event in the same transaction and notifies only after commit", async () => {
    const seen: StoreNotification[] = [];
    store.onNotification((n) => seen.push(n));
    const [ok, refused] = await Promise.all([opaqueAppend("a", 1), opaqueAppend("b", 1, { build: () => { throw new Error("no"); } })]);
    expect(ok?.kind).toBe("committed");
    expect(refused?.kind).toBe("rejected");
    const bounds = await store.getEventBounds("s1");
    const events = await store.readEvents("s1", 0, 100);
    expect(events.map((e) => e.body.kind)).toEqual(["stream-created", "deltas-appended"]);
    expect(bounds.head).toBe(2);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ kind: "events", subjectId: "s1", events: [{ sequence: 2 }] });
    const logged = events[1]!.body;
    expect(logged.kind === "deltas-appended" && logged.deltas.map((d) => d.version)).toEqual([1]);
  });
});

describe("schema", () => {
  it("records ordered migrations once and refuses a newer database", async () => {
    await store.close();
    store = createSqliteStore({ path: join(dir, "db.sqlite") });
    const rows = store.db.prepare("SELECT version FROM schema_migrations ORDER BY version").all() as { version: number }[];
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    await store.close();
    const raw = new BetterSqlite3(join(dir, "db.sqlite"));
    raw.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)").run();
    raw.close();
    expect(() => createSqliteStore({ path: join(dir, "db.sqlite") })).toThrow(/newer/);
    store = createSqliteStore({ path: ":memory:" });
  });

  it("backfills the checkpoint streams of handoffs made before migration 2, and hides orphans", async () => {
    const path = join(dir, "v1.sqlite");
    const raw = new BetterSqlite3(path);
    raw.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    raw.exec(MIGRATIONS[0]!.sql);
    raw.prepare("INSERT INTO schema_migrations VALUES (1, 'initial schema', 0)").run();
    raw.prepare("INSERT INTO subjects (subject_id, created_at, event_seq) VALUES ('s1', 0, 1)").run();
    raw.prepare("INSERT INTO checkpoints VALUES ('s1', 'cp', '{}', x'00', NULL, 'p', 0, 1)").run();
    const entry = raw.prepare("INSERT INTO checkpoint_entries VALUES ('s1', 'cp', ?, ?, ?, ?, ?, 1, x'00')");
    entry.run(0, "a", "uid-a", "org.example.a", "p");
    entry.run(1, "b", "uid-b", "org.example.b", "q");
    const handoff = raw.prepare("INSERT INTO handoffs VALUES ('s1', ?, ?, 'dev', NULL, 'expired', NULL, 0, 0, 0)");
    handoff.run("kept", "cp");
    handoff.run("orphan", "deleted-cp");
    // Logged by the old schema: the handoff in the event knows nothing of its streams.
    const body = { kind: "handoff-resolved", handoff: { subjectId: "s1", id: "kept", checkpointId: "cp", sourceDeviceId: "dev", state: "expired", createdAt: { $d: 0 }, expiresAt: { $d: 0 }, resolvedAt: { $d: 0 } } };
    raw.prepare("INSERT INTO subject_events VALUES ('s1', 1, 0, ?)").run(JSON.stringify(body));
    raw.close();

    const migrated = createSqliteStore({ path });
    try {
      const expected = [
        { ownerPlatformId: "p", type: "org.example.a" },
        { ownerPlatformId: "q", type: "org.example.b" },
      ];
      expect((await migrated.getHandoff("s1", "kept", now))?.checkpointStreams).toEqual(expected);
      expect((await migrated.getHandoff("s1", "orphan", now))?.checkpointStreams).toEqual([]);
      const [event] = await migrated.readEvents("s1", 0, 10);
      expect(event?.body.kind === "handoff-resolved" ? event.body.handoff.checkpointStreams : undefined).toEqual(expected);
    } finally {
      await migrated.close();
    }
  });

  it("keeps only each device's latest outcome on each stream when migration 4 runs", async () => {
    const path = join(dir, "v3.sqlite");
    const raw = new BetterSqlite3(path);
    raw.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    for (const m of MIGRATIONS.filter((m) => m.version <= 3)) {
      raw.exec(m.sql);
      raw.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
    }
    raw.prepare("INSERT INTO subjects (subject_id, created_at) VALUES ('s1', 0)").run();
    raw.prepare("INSERT INTO streams VALUES ('s1', 'st', 'uid', 't', 3, 1, 'p', x'00', 2, x'00', 0, x'00', NULL, 0, 0)").run();
    const outcome = (v: number) => JSON.stringify({ r: [[v, "00"]], v, h: "00" });
    const row = raw.prepare("INSERT INTO client_sequences VALUES ('s1', ?, 'st', ?, x'07', ?)");
    row.run("a", 1, outcome(1));
    row.run("a", 2, outcome(2));
    row.run("b", 1, outcome(3));
    raw.close();

    const migrated = createSqliteStore({ path });
    try {
      expect(migrated.db.prepare("SELECT device_id, client_sequence FROM client_outcomes ORDER BY device_id").all()).toEqual([
        { device_id: "a", client_sequence: 2 },
        { device_id: "b", client_sequence: 1 },
      ]);
      const retry = (device: string, seq: number) =>
        migrated.appendBatch({
          subjectId: "s1",
          streamId: "st",
          streamUid: "uid",
          deviceId: device,
          clientSequence: seq,
          fingerprint: new Uint8Array([7]),
          expectedVersion: undefined,
          now,
          build: () => {
            throw new Error("nothing to build");
          },
        });
      expect(await retry("a", 2)).toMatchObject({ kind: "replayed", outcome: { headVersion: 2 } });
      expect(await retry("a", 1)).toEqual({ kind: "sequence-expired", clientSequence: 1, expectedSequence: 3 });
    } finally {
      await migrated.close();
    }
  });

  it("rewrites the batch events of existing streams when migration 6 runs, and reads the others as before", async () => {
    const path = join(dir, "v5.sqlite");
    const raw = new BetterSqlite3(path);
    raw.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    for (const m of MIGRATIONS.filter((m) => m.version <= 5)) {
      raw.exec(m.sql);
      raw.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
    }
    raw.prepare("INSERT INTO subjects (subject_id, created_at, event_seq) VALUES ('s1', 0, 2)").run();
    raw
      .prepare(
        "INSERT INTO streams (subject_id, stream_id, uid, type, encoding, conflict_policy, owner_platform, genesis_hash, head_version, head_hash, horizon_version, horizon_hash, created_at, updated_at) VALUES ('s1', 'st', 'uid-new', 't', 3, 1, 'p', x'00', 1, x'01', 0, x'00', 0, 0)",
      )
      .run();
    raw.prepare("INSERT INTO deltas VALUES ('s1', 'st', 1, x'2a', x'00', x'01', 'dev', 1, 1, 1, 0)").run();
    const batch = (uid: string) => JSON.stringify({ kind: "deltas-appended", stream: { id: "st", uid, type: "t", ownerPlatformId: "p" }, firstVersion: 1, count: 1, deltas: [] });
    // Seq 1: a batch of an earlier stream under the same id; seq 2: one of the stream that is there.
    raw.prepare("INSERT INTO subject_events VALUES ('s1', 1, 0, ?)").run(batch("uid-old"));
    raw.prepare("INSERT INTO subject_events VALUES ('s1', 2, 0, ?)").run(batch("uid-new"));
    raw.close();

    const migrated = createSqliteStore({ path });
    try {
      expect(migrated.db.prepare("SELECT seq, body = '' AS named, batch_stream FROM subject_events ORDER BY seq").all()).toEqual([
        { seq: 1, named: 0, batch_stream: null },
        { seq: 2, named: 1, batch_stream: "st" },
      ]);
      const events = await migrated.readEvents("s1", 0, 10);
      expect(events.map((e) => (e.body.kind === "deltas-appended" ? [e.body.stream.uid, e.body.deltas.length] : []))).toEqual([
        ["uid-old", 0],
        ["uid-new", 1],
      ]);
    } finally {
      await migrated.close();
    }
  });

  it("cuts the JSON states stored whole before migration 8 into chunks, and reads them back as they were", async () => {
    const path = join(dir, "v7.sqlite");
    const raw = new BetterSqlite3(path);
    raw.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    for (const m of MIGRATIONS.filter((m) => m.version <= 7)) {
      raw.exec(m.sql);
      raw.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
    }
    raw.prepare("INSERT INTO subjects (subject_id, created_at) VALUES ('s1', 0)").run();
    raw
      .prepare(
        "INSERT INTO streams (subject_id, stream_id, uid, type, encoding, conflict_policy, owner_platform, genesis_hash, head_version, head_hash, horizon_version, horizon_hash, created_at, updated_at, state_version) VALUES ('s1', 'js', 'uid', 't', 2, 1, 'p', x'00', 3, x'03', 0, x'00', 0, 0, 3)",
      )
      .run();
    for (const v of [1, 2, 3]) raw.prepare("INSERT INTO deltas VALUES ('s1', 'js', ?, x'7b7d', ?, ?, 'dev', ?, ?, 1, 0)").run(v, Buffer.from(hash(v - 1)), Buffer.from(hash(v)), v, v);
    // A state of two and a half chunks at version 3, and the empty one at version 0.
    const big = Buffer.alloc(2.5 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 13 + (i >> 20)) % 251;
    raw.prepare("INSERT INTO json_states (subject_id, stream_id, version, state) VALUES ('s1', 'js', 0, ?), ('s1', 'js', 3, ?)").run(Buffer.from("{}"), big);
    raw.close();

    const migrated = createSqliteStore({ path });
    try {
      expect(migrated.db.prepare("SELECT version, chunks, size_bytes, length(state) AS n FROM json_states ORDER BY version").all()).toEqual([
        { version: 0, chunks: 1, size_bytes: 2, n: 0 },
        { version: 3, chunks: 3, size_bytes: big.length, n: 0 },
      ]);
      expect(migrated.db.prepare("SELECT state_id, idx, length(data) AS n FROM json_state_chunks ORDER BY state_id, idx").all()).toEqual([
        { state_id: "v0", idx: 0, n: 2 },
        { state_id: "v3", idx: 0, n: 1024 * 1024 },
        { state_id: "v3", idx: 1, n: 1024 * 1024 },
        { state_id: "v3", idx: 2, n: 512 * 1024 },
      ]);
      const at3 = await migrated.loadStateBase("s1", "js", 3);
      expect("baseState" in at3 && at3.baseVersion === 3 && Buffer.from(at3.baseState).equals(big)).toBe(true);
      const at2 = await migrated.loadStateBase("s1", "js", 2);
      expect("baseState" in at2 && [at2.baseVersion, Buffer.from(at2.baseState).toString(), at2.deltas.map((d) => d.version)]).toEqual([0, "{}", [1, 2]]);
    } finally {
      await migrated.close();
    }
  });

  it("keys deltas and events by integers from migration 10 on, keeps every stream's deltas and events apart, and drops a pending purge's deltas", async () => {
    const path = join(dir, "v9.sqlite");
    const raw = new BetterSqlite3(path);
    raw.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
    for (const m of MIGRATIONS.filter((m) => m.version <= 9)) {
      raw.exec(m.sql);
      raw.prepare("INSERT INTO schema_migrations VALUES (?, ?, 0)").run(m.version, m.name);
    }
    // Two subjects with a stream of the same id; s1 also holds the deltas of a stream whose
    // row a deletion already removed (its purge pending), under an id s2 uses too.
    const streamRow = raw.prepare(
      "INSERT INTO streams (subject_id, stream_id, uid, type, encoding, conflict_policy, owner_platform, genesis_hash, head_version, head_hash, horizon_version, horizon_hash, created_at, updated_at, created_seq) VALUES (?, ?, ?, 't', 3, 1, 'p', ?, ?, ?, 0, ?, 0, 0, 0)",
    );
    const delta = raw.prepare("INSERT INTO deltas (subject_id, stream_id, version, payload, prev_hash, hash, device_id, client_sequence, batch_first, batch_size, committed_at) VALUES (?, ?, ?, ?, x'', ?, 'dev', ?, ?, 1, ?)");
    const event = raw.prepare("INSERT INTO subject_events (subject_id, seq, committed_at, body, batch_stream, batch_first, batch_count) VALUES (?, ?, ?, '', ?, ?, 1)");
    for (const [subject, heads] of [["s1", 3], ["s2", 2]] as const) {
      raw.prepare("INSERT INTO subjects (subject_id, created_at, event_seq) VALUES (?, 0, ?)").run(subject, heads);
      streamRow.run(subject, "st", `uid-${subject}`, Buffer.from(hash(0)), heads, Buffer.from(hash(heads)), Buffer.from(hash(0)));
      for (let v = 1; v <= heads; v++) {
        delta.run(subject, "st", v, Buffer.from(`${subject}:${v}`), Buffer.from(hash(v)), v, v, v * 1000);
        event.run(subject, v, v * 1000, "st", v);
      }
    }
    streamRow.run("s2", "old", "uid-s2-old", Buffer.from(hash(0)), 1, Buffer.from(hash(9)), Buffer.from(hash(0)));
    delta.run("s2", "old", 1, Buffer.from("s2:old"), Buffer.from(hash(9)), 1, 1, 0);
    // As erasure.ts leaves them: the stream row deleted with foreign keys off.
    raw.pragma("foreign_keys = OFF");
    delta.run("s1", "old", 1, Buffer.from("s1:purged"), Buffer.from(hash(9)), 1, 1, 0);
    raw.prepare("INSERT INTO meta (key, value) VALUES (?, x'31')").run(`stream_purge_pending:${JSON.stringify(["s1", "old"])}`);
    raw.close();

    const migrated = createSqliteStore({ path });
    try {
      const text = (d: { payload: Uint8Array }) => Buffer.from(d.payload).toString();
      for (const [subject, heads] of [["s1", 3], ["s2", 2]] as const) {
        const deltas = await migrated.listDeltas(subject, "st", 0, 10);
        expect(deltas.map((d) => [d.subjectId, d.streamId, d.version, text(d), d.hash[0], d.prevHash[0], d.committedAt.getTime()])).toEqual(
          Array.from({ length: heads }, (_, i) => [subject, "st", i + 1, `${subject}:${i + 1}`, i + 1, i, (i + 1) * 1000]),
        );
        const events = await migrated.readEvents(subject, 0, 10);
        expect(events.map((e) => [e.sequence, e.committedAt.getTime(), e.body.kind === "deltas-appended" ? e.body.deltas.map(text) : []])).toEqual(
          Array.from({ length: heads }, (_, i) => [i + 1, (i + 1) * 1000, [`${subject}:${i + 1}`]]),
        );
      }
      expect((await migrated.listDeltas("s2", "old", 0, 10)).map(text)).toEqual(["s2:old"]);
      // Keyed in the order of (subject_id, stream_id). The purge's deltas went with the old
      // table; its record finds nothing left and goes.
      const payloads = (migrated.db.prepare("SELECT payload FROM deltas ORDER BY stream_key, version").all() as { payload: Buffer }[]).map((r) => r.payload.toString());
      expect(payloads).toEqual(["s1:1", "s1:2", "s1:3", "s2:old", "s2:1", "s2:2"]);
      expect(await migrated.getStream("s1", "old")).toBeUndefined();
      // Writes go on under the new keys: an append, an event, a stream created with the purged id.
      const appended = await migrated.appendBatch({
        subjectId: "s1",
        streamId: "st",
        streamUid: "uid-s1",
        deviceId: "dev-2",
        clientSequence: 1,
        fingerprint: new Uint8Array([4]),
        expectedVersion: 3,
        now,
        build: ({ stream }): BuiltBatch => ({ deltas: [{ payload: Buffer.from("s1:4"), prevHash: stream.headHash, hash: hash(4) }] }),
      });
      expect(appended).toMatchObject({ kind: "committed", outcome: { headVersion: 4 } });
      expect((await migrated.readEvents("s1", 3, 10)).map((e) => [e.sequence, e.body.kind])).toEqual([[4, "deltas-appended"]]);
      expect((await migrated.listDeltas("s1", "st", 2, 10)).map((d) => [text(d), d.prevHash[0]])).toEqual([["s1:3", 2], ["s1:4", 3]]);
      const created = await migrated.createStream({
        subjectId: "s1",
        id: "old",
        uid: "uid-s1-new",
        type: "t",
        encoding: Encoding.Opaque,
        conflictPolicy: Policy.AllowBlindAppend,
        ownerPlatformId: "p",
        genesisHash: hash(0),
        initialState: undefined,
        maxStreamsPerSubject: 10,
        now,
      });
      expect(created.kind).toBe("created");
      expect(await migrated.listDeltas("s1", "old", 0, 10)).toEqual([]);
      expect(migrated.db.prepare("SELECT key FROM meta WHERE key LIKE 'stream_purge_pending:%'").all()).toEqual([]);
      // A new subject's key follows the others'.
      await migrated.createSubjectWithLink({ subjectId: "s3", linkId: "l3", platformId: "p", accountId: "acct-3", now });
      expect(migrated.db.prepare("SELECT subject_id, subject_key FROM subjects ORDER BY subject_key").all()).toEqual([
        { subject_id: "s1", subject_key: 1 },
        { subject_id: "s2", subject_key: 2 },
        { subject_id: "s3", subject_key: 3 },
      ]);
    } finally {
      await migrated.close();
    }
  });

  /** Polls until `done` holds: the store deletes garbage in the background, a statement per turn. */
  async function eventually(done: () => boolean): Promise<void> {
    for (let i = 0; i < 500 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(done()).toBe(true);
  }

  it("deletes what a compaction let go of, a chunk and a few deltas per statement, and a crash's leftover chunks at the next open", async () => {
    await store.createStream({
      subjectId: "s1",
      id: "js",
      uid: "00000000-0000-4000-8000-000000000005",
      type: "org.example.t",
      encoding: Encoding.JsonMergePatch,
      conflictPolicy: Policy.AllowBlindAppend,
      ownerPlatformId: "p",
      genesisHash: hash(0),
      initialState: Buffer.from("{}"),
      maxStreamsPerSubject: 10,
      now,
    });
    for (let seq = 1; seq <= 40; seq++) {
      const result = await store.appendBatch({
        subjectId: "s1",
        streamId: "js",
        streamUid: "00000000-0000-4000-8000-000000000005",
        deviceId: "d",
        clientSequence: seq,
        fingerprint: new Uint8Array([seq]),
        expectedVersion: undefined,
        now,
        build: ({ stream }): BuiltBatch => ({ deltas: [{ payload: Buffer.from("{}"), prevHash: stream.headHash, hash: hash(stream.headVersion + 1) }] }),
      });
      expect(result.kind).toBe("committed");
    }
    const put = (version: number, bytes: number) =>
      store.putJsonState({ subjectId: "s1", streamId: "js", streamUid: "00000000-0000-4000-8000-000000000005", version, state: Buffer.alloc(bytes, 0x20) });
    expect(await put(10, 2 * 1024 * 1024 + 1)).toBe(true);
    const chunks = () => store.db.prepare("SELECT state_id, COUNT(*) AS n FROM json_state_chunks WHERE stream_id = 'js' GROUP BY state_id ORDER BY n").all() as { state_id: string; n: number }[];
    expect(chunks().map((c) => c.n)).toEqual([1, 3]);
    const compacted = await store.compactStream({ subjectId: "s1", streamId: "js", horizonVersion: 35, stateAtHorizon: Buffer.alloc(1024 * 1024 + 7, 0x20), now });
    expect(compacted.kind).toBe("compacted");
    const deltasLeft = () => (store.db.prepare("SELECT COUNT(*) AS n FROM deltas WHERE stream_key = (SELECT stream_key FROM stream_keys WHERE stream_id = 'js')").get() as { n: number }).n;
    await eventually(() => chunks().length === 1 && deltasLeft() === 5);
    expect(chunks()[0]!.n).toBe(2);
    expect((await store.listDeltas("s1", "js", 0, 100)).map((d) => d.version)).toEqual([36, 37, 38, 39, 40]);

    // A write cut short: chunks that no row names. The next open deletes them.
    const path = join(dir, "db.sqlite");
    store.db.prepare("INSERT INTO json_state_chunks (subject_id, stream_id, state_id, idx, written_at, data) VALUES ('s1', 'js', 'cut-short', 0, 1, x'00'), ('s1', 'js', 'cut-short', 1, 1, x'00')").run();
    await store.close();
    store = createSqliteStore({ path });
    await eventually(() => chunks().length === 1);
    const base = await store.loadStateBase("s1", "js", 40);
    expect("baseState" in base && [base.baseVersion, base.baseState.length, base.deltas.length]).toEqual([35, 1024 * 1024 + 7, 5]);
  });

  it("writes a large payload known before the append as chunks ahead of it, names them in the delta's row, and deletes those nothing names", async () => {
    await store.createStream({
      subjectId: "s1",
      id: "js",
      uid: "00000000-0000-4000-8000-000000000005",
      type: "org.example.t",
      encoding: Encoding.JsonMergePatch,
      conflictPolicy: Policy.AllowBlindAppend,
      ownerPlatformId: "p",
      genesisHash: hash(0),
      initialState: Buffer.from("{}"),
      maxStreamsPerSubject: 10,
      now,
    });
    const big = Buffer.alloc(2 * 1024 * 1024 + 5, 0x61);
    const appendBig = (seq: number, build?: AppendInput["build"]) =>
      store.appendBatch({
        subjectId: "s1",
        streamId: "js",
        streamUid: "00000000-0000-4000-8000-000000000005",
        deviceId: "d",
        clientSequence: seq,
        fingerprint: new Uint8Array([seq]),
        expectedVersion: undefined,
        now,
        expectedPayloads: [big],
        build: build ?? (({ stream }): BuiltBatch => ({ deltas: [{ payload: big, prevHash: stream.headHash, hash: hash(stream.headVersion + 1) }] })),
      });
    const chunks = () => store.db.prepare("SELECT state_id, COUNT(*) AS n FROM json_state_chunks WHERE stream_id = 'js' GROUP BY state_id ORDER BY state_id").all() as { state_id: string; n: number }[];
    const initial = chunks();
    // A refused build: its chunks were written, no row names them, they are deleted.
    expect((await appendBig(1, () => { throw new Error("refused"); })).kind).toBe("rejected");
    await eventually(() => chunks().length === initial.length);
    expect((await appendBig(1)).kind).toBe("committed");
    const row = store.db.prepare("SELECT length(payload) AS inline, payload_id, payload_chunks, payload_bytes FROM deltas WHERE stream_key = (SELECT stream_key FROM stream_keys WHERE stream_id = 'js') AND version = 1").get() as {
      inline: number;
      payload_id: string;
      payload_chunks: number;
      payload_bytes: number;
    };
    expect(row).toMatchObject({ inline: 0, payload_chunks: 3, payload_bytes: big.length });
    expect(chunks()).toContainEqual({ state_id: row.payload_id, n: 3 });
    expect(Buffer.from((await store.listDeltas("s1", "js", 0, 10))[0]!.payload).equals(big)).toBe(true);

    // Compaction past it: the background deletion of its delta takes its chunks too.
    expect((await store.compactStream({ subjectId: "s1", streamId: "js", horizonVersion: 1, stateAtHorizon: Buffer.from("{}"), now })).kind).toBe("compacted");
    await eventually(() => !chunks().some((c) => c.state_id === row.payload_id));
    // A crash's leftover is swept at the next open, unless a delta names it.
    expect((await appendBig(2)).kind).toBe("committed");
    const named = (store.db.prepare("SELECT payload_id FROM deltas WHERE stream_key = (SELECT stream_key FROM stream_keys WHERE stream_id = 'js') AND version = 2").get() as { payload_id: string }).payload_id;
    store.db.prepare("UPDATE json_state_chunks SET written_at = 1 WHERE state_id = ?").run(named);
    store.db.prepare("INSERT INTO json_state_chunks (subject_id, stream_id, state_id, idx, written_at, data) VALUES ('s1', 'js', 'cut-short', 0, 1, x'00')").run();
    const path = join(dir, "db.sqlite");
    await store.close();
    store = createSqliteStore({ path });
    await eventually(() => !chunks().some((c) => c.state_id === "cut-short"));
    expect(chunks()).toContainEqual({ state_id: named, n: 3 });
    expect(Buffer.from((await store.listDeltas("s1", "js", 1, 10))[0]!.payload).equals(big)).toBe(true);
    // Deleting the stream takes them with it.
    await store.deleteStream("s1", "js", now);
    expect(chunks()).toEqual([]);
  });

  it("stores no prev_hash that repeats the previous hash, and reads every one back, past a horizon too", async () => {
    for (const seq of [1, 2, 3]) expect((await opaqueAppend("d", seq)).kind).toBe("committed");
    // A prev_hash that is not the head's (no server chains so) is kept as it came.
    await opaqueAppend("d", 4, {
      build: (): BuiltBatch => ({ deltas: [{ payload: new Uint8Array([4]), prevHash: hash(77), hash: hash(4) }] }),
    });
    expect(store.db.prepare("SELECT version, length(prev_hash) AS n FROM deltas ORDER BY version").all()).toEqual([
      { version: 1, n: 0 },
      { version: 2, n: 0 },
      { version: 3, n: 0 },
      { version: 4, n: 32 },
    ]);
    const prevs = async (after: number) => (await store.listDeltas("s1", "opaque", after, 10)).map((d) => Buffer.from(d.prevHash)[0]);
    expect(await prevs(0)).toEqual([0, 1, 2, 77]);
    expect(await prevs(2)).toEqual([2, 77]);
    // An opaque stream compacts at an uploaded snapshot; its bytes do not matter here.
    store.db.prepare("INSERT INTO snapshots (subject_id, stream_id, version, head_hash, size_bytes, snapshot_hash, created_at) VALUES ('s1', 'opaque', 2, x'02', 0, x'00', 0)").run();
    expect((await store.compactStream({ subjectId: "s1", streamId: "opaque", horizonVersion: 2, stateAtHorizon: undefined, now })).kind).toBe("compacted");
    expect(await prevs(0)).toEqual([2, 77]);
  });

  it("keeps the epoch across restarts", async () => {
    const epoch = await store.getEpoch();
    await store.close();
    store = createSqliteStore({ path: join(dir, "db.sqlite") });
    expect(await store.getEpoch()).toBe(epoch);
  });

  it("keys every table by subject, so erasure leaves no row behind", async () => {
    await opaqueAppend("a", 1);
    await store.createStream({
      subjectId: "s1",
      id: "json",
      uid: "00000000-0000-4000-8000-000000000002",
      type: "org.example.t",
      encoding: Encoding.JsonMergePatch,
      conflictPolicy: Policy.AllowBlindAppend,
      ownerPlatformId: "p",
      genesisHash: hash(0),
      initialState: new TextEncoder().encode("{}"),
      maxStreamsPerSubject: 10,
      now,
    });
    await store.registerDevice({ subjectId: "s1", deviceId: "a", platformId: "p", displayName: "A", now });
    await store.createGrant({ subjectId: "s1", id: "g", grantorPlatformId: "p", granteePlatformId: "q", streamType: "*", access: "read", now });
    await store.createLinkCode({ subjectId: "s1", platformId: "p", codeHash: hash(7), now, expiresAt: new Date(now.getTime() + 1000) });
    await store.putSnapshot({
      subjectId: "s1",
      streamId: "opaque",
      version: 1,
      sizeBytes: 1,
      snapshotHash: hash(5),
      verify: () => true,
      chunks: [new Uint8Array([1])],
      now,
    });
    const created = await store.createCheckpoint({
      subjectId: "s1",
      id: "cp",
      selectors: [{ streamId: "opaque", version: undefined }],
      resume: { activityType: "", resource: "", position: "", fallbackUrl: "", attributes: {} },
      deviceId: "a",
      platformId: "p",
      canRead: () => true,
      digest: () => hash(3),
      now,
    });
    expect(created.kind).toBe("created");
    await store.createHandoff({ subjectId: "s1", id: "h", checkpointId: "cp", sourceDeviceId: "a", targetDeviceId: undefined, now, expiresAt: now });
    expect(await store.putMigration({ subjectId: "s1", id: "m", source: "h:1", sourceSubject: "", state: "copying", recordsCopied: 0, recordsTotal: 0, bytesCopied: 0, lagDeltas: 0, switchPauseMs: undefined, error: "", createdAt: now, endedAt: undefined })).toBe("stored");
    await store.recordSubjectMove({ subjectId: "s1", target: "h:2", targetSubject: "subjects/t", movedAt: now });

    const tables = (store.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[])
      .map((t) => t.name)
      .filter((name) => (store.db.prepare(`PRAGMA table_info(${name})`).all() as { name: string }[]).some((c) => c.name === "subject_id"));
    expect(tables.length).toBeGreaterThanOrEqual(14);
    const count = (table: string) => (store.db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE subject_id = 's1'`).get() as { n: number }).n;
    expect(tables.filter((t) => count(t) === 0)).toEqual([]);

    expect(await store.eraseSubject("s1")).toBe(true);
    expect(tables.filter((t) => count(t) > 0)).toEqual([]);
  });
});

describeStoreContract("sqlite", async () => {
  const contractDir = await mkdtemp(join(tmpdir(), "continuity-contract-"));
  const contractStore = createSqliteStore({ path: join(contractDir, "db.sqlite") });
  return {
    store: contractStore,
    async close() {
      await contractStore.close();
      await rm(contractDir, { recursive: true, force: true });
    },
  };
});
