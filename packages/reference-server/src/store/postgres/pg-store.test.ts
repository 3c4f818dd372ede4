import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { AppendInput, AppendResult, BuiltBatch, StoreNotification } from "../types.js";
import { Encoding, Policy } from "../types.js";
import { describeStoreContract } from "../../testing/store-contract.js";
import { dropSchema, freshSchemaName, openTestPostgresStore, TEST_DATABASE_URL } from "../../testing/postgres.js";
import { PG_MIGRATIONS } from "./migrations.js";
import { createPostgresStore, type PostgresStore } from "./pg-store.js";

const now = new Date("2026-01-01T00:00:00Z");
const hash = (n: number) => new Uint8Array(32).fill(n);
const UID = "00000000-0000-4000-8000-000000000001";

let store: PostgresStore;
let schema: string;
let closeStore: () => Promise<void>;
let groups: number[];

async function seed(target: PostgresStore): Promise<void> {
  await target.createSubjectWithLink({ subjectId: "s1", linkId: "l1", platformId: "p", accountId: "acct", now });
  await target.createStream({
    subjectId: "s1",
    id: "opaque",
    uid: UID,
    type: "org.example.t",
    encoding: Encoding.Opaque,
    conflictPolicy: Policy.AllowBlindAppend,
    ownerPlatformId: "p",
    genesisHash: hash(0),
    initialState: undefined,
    maxStreamsPerSubject: 10,
    now,
  });
}

beforeEach(async () => {
  groups = [];
  const opened = await openTestPostgresStore({ onGroupCommit: (n) => groups.push(n) });
  ({ store, schema } = opened);
  closeStore = opened.close;
  await seed(store);
});
afterEach(async () => {
  await closeStore();
});

/** An append whose deltas carry their version as hash byte, so order is visible. */
function opaqueAppend(device: string, seq: number, overrides: Partial<AppendInput> = {}, target: PostgresStore = store): Promise<AppendResult> {
  return target.appendBatch({
    subjectId: "s1",
    streamId: "opaque",
    streamUid: UID,
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

describe("appendBatch group commit (postgres)", () => {
  it("commits appends of one subject that queue up together in one transaction, each with its own outcome", async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => opaqueAppend(`d${i}`, 1)));
    // All ten queued before the subject's lane ran: one transaction, one commit.
    expect(groups).toEqual([10]);
    expect(results.map((r) => r.kind)).toEqual(Array(10).fill("committed"));
    const versions = results.map((r) => (r.kind === "committed" ? r.outcome.headVersion : 0));
    expect(versions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it("does not let a failing statement fail or leak into the appends grouped with it", async () => {
    await opaqueAppend("first", 1);
    groups = [];
    const [ok1, refused, broken, conflict, ok2] = await Promise.all([
      opaqueAppend("a", 1),
      opaqueAppend("b", 1, { build: () => { throw new Error("refused by build"); } }),
      // Writes one delta, then fails inside the database on the second: the group is retried alone.
      opaqueAppend("c", 1, {
        build: ({ stream }) => ({
          deltas: [
            { payload: new Uint8Array([1]), prevHash: stream.headHash, hash: hash(90) },
            { payload: null as unknown as Uint8Array, prevHash: hash(90), hash: hash(91) },
          ],
        }),
      }),
      opaqueAppend("d", 1, { expectedVersion: 1 }),
      opaqueAppend("e", 1),
    ]);
    expect(ok1?.kind).toBe("committed");
    expect(refused).toMatchObject({ kind: "rejected" });
    expect(broken).toMatchObject({ kind: "rejected" });
    expect(conflict).toMatchObject({ kind: "version-conflict", headVersion: 2 });
    expect(ok2?.kind).toBe("committed");
    // The group of five failed whole; then each ran alone, and only the broken one failed again.
    expect(groups).toEqual([1, 1, 1, 1]);
    const deltas = await store.listDeltas("s1", "opaque", 0, 100);
    expect(deltas.map((d) => [d.version, d.deviceId])).toEqual([
      [1, "first"],
      [2, "a"],
      [3, "e"],
    ]);
    expect(deltas.some((d) => Buffer.from(d.hash).equals(Buffer.from(hash(90))))).toBe(false);
    expect((await opaqueAppend("b", 1)).kind).toBe("committed");
  });
});

describe("schema (postgres)", () => {
  it("migrates an empty schema once when two servers start on it together", async () => {
    const shared = freshSchemaName();
    try {
      const opened = await Promise.all([0, 1, 2].map(() => createPostgresStore({ url: TEST_DATABASE_URL, schema: shared, poolSize: 2 })));
      // Replicas agree on the epoch and the secret that signs cursors and page tokens.
      const epochs = await Promise.all(opened.map((s) => s.getEpoch()));
      const secrets = await Promise.all(opened.map(async (s) => Buffer.from(await s.getInstanceSecret()).toString("hex")));
      expect(new Set(epochs).size).toBe(1);
      expect(new Set(secrets).size).toBe(1);
      const rows = await opened[0]!.pool.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version");
      expect(rows.rows.map((r) => r.version)).toEqual(PG_MIGRATIONS.map((m) => m.version));
      await Promise.all(opened.map((s) => s.close()));
      // A restart keeps the epoch.
      const again = await createPostgresStore({ url: TEST_DATABASE_URL, schema: shared, poolSize: 1 });
      expect(await again.getEpoch()).toBe(epochs[0]);
      await again.close();
    } finally {
      await dropSchema(shared);
    }
  });

  it("cuts the JSON states stored whole before migration 5 into chunks, which read back as they were; a crash's old leftover chunks go at the next open", async () => {
    const old = freshSchemaName();
    const pg = (await import("pg")).default;
    const raw = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await raw.connect();
    try {
      await raw.query(`CREATE SCHEMA ${old}; SET search_path TO ${old}`);
      await raw.query("CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)");
      for (const m of PG_MIGRATIONS.filter((m) => m.version <= 4)) {
        await raw.query(m.sql);
        await raw.query("INSERT INTO schema_migrations VALUES ($1, $2, 0)", [m.version, m.name]);
      }
      await raw.query("INSERT INTO subjects (subject_id, created_at) VALUES ('s1', 0)");
      await raw.query(
        "INSERT INTO streams (subject_id, stream_id, uid, type, encoding, conflict_policy, owner_platform, genesis_hash, head_version, head_hash, horizon_version, horizon_hash, created_at, updated_at, state_version) VALUES ('s1', 'js', 'uid', 't', 2, 1, 'p', '\\x00', 0, '\\x00', 0, '\\x00', 0, 0, 0)",
      );
      const big = Buffer.alloc(2.5 * 1024 * 1024);
      for (let i = 0; i < big.length; i++) big[i] = (i * 13 + (i >> 20)) % 251;
      await raw.query("INSERT INTO json_states (subject_id, stream_id, version, state) VALUES ('s1', 'js', 0, $1)", [big]);
      const migrated = await createPostgresStore({ url: TEST_DATABASE_URL, schema: old, poolSize: 2 });
      try {
        const rows = await migrated.pool.query("SELECT state_id, idx, octet_length(data) AS n FROM json_state_chunks ORDER BY idx");
        expect(rows.rows).toEqual([
          { state_id: "v0", idx: 0, n: 1024 * 1024 },
          { state_id: "v0", idx: 1, n: 1024 * 1024 },
          { state_id: "v0", idx: 2, n: 512 * 1024 },
        ]);
        const base = await migrated.loadStateBase("s1", "js", 0);
        expect("baseState" in base && Buffer.from(base.baseState).equals(big)).toBe(true);
        // Chunks no row names: written long ago (a crash), or just now (another replica's write under way).
        await migrated.pool.query("INSERT INTO json_state_chunks VALUES ('s1', 'js', 'cut-short', 0, 1, '\\x00'), ('s1', 'js', 'under-way', 0, $1, '\\x00')", [Date.now()]);
      } finally {
        await migrated.close();
      }
      const reopened = await createPostgresStore({ url: TEST_DATABASE_URL, schema: old, poolSize: 2 });
      try {
        const ids = async () => (await reopened.pool.query<{ state_id: string }>("SELECT DISTINCT state_id FROM json_state_chunks ORDER BY state_id")).rows.map((r) => r.state_id);
        for (let i = 0; i < 500 && (await ids()).includes("cut-short"); i++) await new Promise((resolve) => setTimeout(resolve, 10));
        expect(await ids()).toEqual(["under-way", "v0"]);
      } finally {
        await reopened.close();
      }
    } finally {
      await raw.end();
      await dropSchema(old);
    }
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
    const chunks = async (target: PostgresStore = store) =>
      (await target.pool.query<{ state_id: string; n: number }>("SELECT state_id, COUNT(*)::int AS n FROM json_state_chunks WHERE stream_id = 'js' GROUP BY state_id ORDER BY state_id")).rows;
    const eventually = async (done: () => Promise<boolean>) => {
      for (let i = 0; i < 500 && !(await done()); i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await done()).toBe(true);
    };
    const initial = (await chunks()).length;
    // A refused build: its chunks were written, no row names them, they are deleted.
    expect((await appendBig(1, () => { throw new Error("refused"); })).kind).toBe("rejected");
    await eventually(async () => (await chunks()).length === initial);
    expect((await appendBig(1)).kind).toBe("committed");
    const row = (
      await store.pool.query<{ inline: number; payload_id: string; payload_chunks: number; payload_bytes: string }>(
        "SELECT octet_length(payload) AS inline, payload_id, payload_chunks, payload_bytes::text FROM deltas WHERE stream_id = 'js' AND version = 1",
      )
    ).rows[0]!;
    expect(row).toMatchObject({ inline: 0, payload_chunks: 3, payload_bytes: String(big.length) });
    expect(await chunks()).toContainEqual({ state_id: row.payload_id, n: 3 });
    expect(Buffer.from((await store.listDeltas("s1", "js", 0, 10))[0]!.payload).equals(big)).toBe(true);

    // Compaction past it deletes its delta, and its chunks after the commit.
    expect((await store.compactStream({ subjectId: "s1", streamId: "js", horizonVersion: 1, stateAtHorizon: Buffer.from("{}"), now })).kind).toBe("compacted");
    await eventually(async () => !(await chunks()).some((c) => c.state_id === row.payload_id));
    // An old leftover is swept when a store opens, unless a delta names it.
    expect((await appendBig(2)).kind).toBe("committed");
    const named = (await store.pool.query<{ payload_id: string }>("SELECT payload_id FROM deltas WHERE stream_id = 'js' AND version = 2")).rows[0]!.payload_id;
    await store.pool.query("UPDATE json_state_chunks SET written_at = 1 WHERE state_id = $1", [named]);
    await store.pool.query("INSERT INTO json_state_chunks VALUES ('s1', 'js', 'cut-short', 0, 1, '\\x00')");
    const reopened = await createPostgresStore({ url: TEST_DATABASE_URL, schema, poolSize: 2 });
    try {
      await eventually(async () => !(await chunks(reopened)).some((c) => c.state_id === "cut-short"));
      expect(await chunks(reopened)).toContainEqual({ state_id: named, n: 3 });
      expect(Buffer.from((await reopened.listDeltas("s1", "js", 1, 10))[0]!.payload).equals(big)).toBe(true);
      // Deleting the stream takes them with it.
      await reopened.deleteStream("s1", "js", now);
      expect(await chunks(reopened)).toEqual([]);
    } finally {
      await reopened.close();
    }
  });

  it("refuses a schema newer than the code", async () => {
    await store.pool.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)");
    await expect(createPostgresStore({ url: TEST_DATABASE_URL, schema, poolSize: 1 })).rejects.toThrow(/newer/);
  });

  it("keys every table by subject, and erasure leaves no row of the subject", async () => {
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
    await store.putSnapshot({ subjectId: "s1", streamId: "opaque", version: 1, sizeBytes: 1, snapshotHash: hash(5), verify: () => true, chunks: [new Uint8Array([1])], now });
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
    const migration = { subjectId: "s1", id: "m", source: "h:1", sourceSubject: "", state: "copying" as const, recordsCopied: 0, recordsTotal: 0, bytesCopied: 0, lagDeltas: 0, switchPauseMs: undefined, error: "", createdAt: now, endedAt: undefined };
    expect(await store.putMigration(migration)).toBe("stored");
    await store.recordSubjectMove({ subjectId: "s1", target: "h:2", targetSubject: "subjects/t", movedAt: now });
    // Another subject's rows are the control: erasure must leave them.
    await store.createSubjectWithLink({ subjectId: "s2", linkId: "l2", platformId: "p", accountId: "other", now });

    const tables = (
      await store.pool.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'subject_id' ORDER BY table_name",
        [schema],
      )
    ).rows.map((r) => r.table_name);
    expect(tables.length).toBeGreaterThanOrEqual(17);
    // Every table but the directories and the per-caller or per-platform tables is keyed by the subject first.
    const keys = await store.pool.query<{ table_name: string; first: string }>(
      `SELECT tc.table_name, kcu.column_name AS first FROM information_schema.table_constraints tc
       JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema
       WHERE tc.table_schema = $1 AND tc.constraint_type = 'PRIMARY KEY' AND kcu.ordinal_position = 1`,
      [schema],
    );
    const notBySubject = keys.rows.filter((k) => k.first !== "subject_id").map((k) => k.table_name).sort();
    expect(notBySubject).toEqual(["account_directory", "failure_windows", "jwks_copies", "link_code_directory", "meta", "schema_migrations"]);
    const count = async (table: string, subject: string) =>
      (await store.pool.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table} WHERE subject_id = $1`, [subject])).rows[0]!.n;
    const empty = async (subject: string) => {
      const out: string[] = [];
      for (const t of tables) if ((await count(t, subject)) === 0) out.push(t);
      return out;
    };
    expect(await empty("s1")).toEqual([]);

    expect(await store.eraseSubject("s1")).toBe(true);
    expect(await empty("s1")).toEqual(tables);
    expect(await count("account_directory", "s2")).toBe(1);
    expect(await store.findAccountLink("p", "acct")).toBeUndefined();
    // The erased account can start afresh.
    expect((await store.createSubjectWithLink({ subjectId: "s3", linkId: "l3", platformId: "p", accountId: "acct", now })).created).toBe(true);
  });
});

describe("replicas of one schema", () => {
  it("tell each other's listeners about commits, in order, with the events read from the log", async () => {
    const other = await createPostgresStore({ url: TEST_DATABASE_URL, schema, poolSize: 2 });
    try {
      const seen: StoreNotification[] = [];
      other.onNotification((n) => seen.push(n));
      for (let i = 1; i <= 5; i++) expect((await opaqueAppend("a", i)).kind).toBe("committed");
      await store.revokeDevice("s1", "nope", now);
      await store.registerDevice({ subjectId: "s1", deviceId: "dev", platformId: "p", displayName: undefined, now });
      await store.revokeDevice("s1", "dev", now);
      // A replica reads remote events from the log: erasing before it did would take them with it.
      await waitFor(() => seen.some((n) => n.kind === "events" && n.events.some((e) => e.body.kind === "device-revoked")));
      await store.eraseSubject("s1");
      await waitFor(() => seen.some((n) => n.kind === "subject-erased"));
      const sequences = seen.flatMap((n) => (n.kind === "events" ? n.events.map((e) => e.sequence) : []));
      expect(sequences).toEqual([2, 3, 4, 5, 6, 7]);
      const appended = seen.flatMap((n) => (n.kind === "events" ? n.events : [])).filter((e) => e.body.kind === "deltas-appended");
      expect(appended.map((e) => (e.body.kind === "deltas-appended" ? e.body.deltas.map((d) => d.version) : []))).toEqual([[1], [2], [3], [4], [5]]);
      expect(seen.at(-1)).toEqual({ kind: "subject-erased", subjectId: "s1" });
    } finally {
      await other.close();
    }
  });

  it("serialize concurrent appends to one stream through different replicas in the database", async () => {
    const other = await createPostgresStore({ url: TEST_DATABASE_URL, schema, poolSize: 2 });
    try {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => opaqueAppend(`d${i}`, 1, { expectedVersion: undefined }, i % 2 === 0 ? store : other)),
      );
      expect(results.every((r) => r.kind === "committed")).toBe(true);
      const deltas = await store.listDeltas("s1", "opaque", 0, 100);
      expect(deltas.map((d) => d.version)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      deltas.forEach((d, i) => expect(Buffer.from(d.prevHash)).toEqual(Buffer.from(i === 0 ? hash(0) : deltas[i - 1]!.hash)));
      // The same client sequence through both replicas: one commits, the other replays it.
      const [x, y] = await Promise.all([opaqueAppend("same", 1, {}, store), opaqueAppend("same", 1, {}, other)]);
      expect([x?.kind, y?.kind].sort()).toEqual(["committed", "replayed"]);
      // Optimistic concurrency: two writers expecting the same head, one wins.
      const [v1, v2] = await Promise.all([opaqueAppend("p", 1, { expectedVersion: 13 }, store), opaqueAppend("q", 1, { expectedVersion: 13 }, other)]);
      expect([v1?.kind, v2?.kind].sort()).toEqual(["committed", "version-conflict"]);
    } finally {
      await other.close();
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describeStoreContract("postgres", () => openTestPostgresStore());

