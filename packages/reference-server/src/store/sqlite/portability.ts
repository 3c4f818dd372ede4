import type { Database, Statement } from "better-sqlite3";
import type {
  ImportDeltasInput,
  ImportDeltasResult,
  ImportRecordResult,
  ImportStreamInput,
  ImportStreamResult,
  MigrationRecord,
  PortabilityStore,
  SubjectMoveRecord,
  SubjectRecordKind,
  SubjectRecordOf,
} from "../portability-types.js";
import type { CheckpointRecord, DeltaRecord, Page, PageRequest, StoreNotification, SubjectEvent, StateLag, SubjectEventBody } from "../types.js";
import { Encoding } from "../types.js";
import { SELECT_DELTAS, STREAM_KEY, STREAM_KEY_OF } from "./migrations.js";
import {
  encodeOutcome,
  storedPrevHash,
  toCheckpoint,
  toDelta,
  toDevice,
  toGrant,
  toLink,
  toStream,
  type CheckpointEntryRow,
  type CheckpointRow,
  type DeltaRow,
  type DeviceRow,
  type GrantRow,
  type LinkRow,
  type StreamRow,
} from "../codec.js";

/** What the portability part of the SQLite store borrows from the rest of it. */
export interface SqlitePortabilityContext {
  readonly db: Database;
  readonly stmt: (sql: string) => Statement;
  readonly write: <T>(fn: (sink: SubjectEvent[]) => T) => T;
  readonly notify: (notification: StoreNotification) => void;
  readonly logEvent: (sink: SubjectEvent[], subjectId: string, body: SubjectEventBody, now: Date) => SubjectEvent;
  readonly nextOrd: (subjectId: string) => number;
  readonly streamRow: (subjectId: string, streamId: string) => StreamRow | undefined;
  /** How far a JSON stream's head is from its newest stored state. */
  readonly stateLag: (subjectId: string, streamId: string) => StateLag;
  readonly addStateLag: (subjectId: string, streamId: string, bytes: number) => void;
  readonly subjectExists: (subjectId: string) => boolean;
  readonly checkpointEntries: (subjectId: string, checkpointId: string) => CheckpointEntryRow[];
  readonly eraseSubject: (subjectId: string) => Promise<boolean>;
  /** Creates a stream of this id once no row of a deleted one is left (erasure.ts `createWhenPurged`). */
  readonly createWhenPurged: <T>(subjectId: string, streamId: string, create: () => T | undefined) => Promise<T>;
  /** Inside the transaction that would create one: whether rows of a deleted stream of this id are still being removed. */
  readonly purgePending: (subjectId: string, streamId: string) => boolean;
  /** Inserts a stream row (head = its version fields) and, for JSON, its state there. */
  readonly insertStream: (row: StreamRow, jsonState: Uint8Array | undefined) => void;
  /** Delta rows in version order as records, their omitted prev_hash filled back in. */
  readonly linkedDeltas: (row: StreamRow, rows: readonly DeltaRow[]) => DeltaRecord[];
  readonly streamColumns: string;
}

/** Snapshot bytes are stored in chunks of this size, as uploads arrive. */
const SNAPSHOT_CHUNK_BYTES = 65_536;

function page<R, T>(rows: R[], limit: number, keyOf: (row: R) => string, map: (row: R) => T): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  const last = kept[kept.length - 1];
  return { items: kept.map(map), nextAfter: more && last !== undefined ? keyOf(last) : undefined };
}

/**
 * The `PortabilityStore` half of the SQLite store. Every import intent is one transaction,
 * so an interrupted import leaves whole records behind and a resumed one skips them.
 */
export function createSqlitePortability(ctx: SqlitePortabilityContext): PortabilityStore {
  const { stmt, write } = ctx;

  const listers: { [K in SubjectRecordKind]: (subjectId: string, request: PageRequest) => Page<SubjectRecordOf[K]> } = {
    checkpoint: (subjectId, request) => {
      const rows = stmt("SELECT * FROM checkpoints WHERE subject_id = ? AND checkpoint_id > ? ORDER BY checkpoint_id LIMIT ?").all(subjectId, request.after ?? "", request.limit + 1) as CheckpointRow[];
      return page(rows, request.limit, (r) => r.checkpoint_id, (r) => toCheckpoint(r, ctx.checkpointEntries(r.subject_id, r.checkpoint_id)));
    },
    "account-link": (subjectId, request) => {
      const rows = stmt("SELECT * FROM account_links WHERE subject_id = ? AND link_id > ? ORDER BY link_id LIMIT ?").all(subjectId, request.after ?? "", request.limit + 1) as LinkRow[];
      return page(rows, request.limit, (r) => r.link_id, toLink);
    },
    device: (subjectId, request) => {
      const rows = stmt("SELECT * FROM devices WHERE subject_id = ? AND device_id > ? ORDER BY device_id LIMIT ?").all(subjectId, request.after ?? "", request.limit + 1) as DeviceRow[];
      return page(rows, request.limit, (r) => r.device_id, toDevice);
    },
    grant: (subjectId, request) => {
      const rows = stmt("SELECT * FROM grants WHERE subject_id = ? AND grant_id > ? ORDER BY grant_id LIMIT ?").all(subjectId, request.after ?? "", request.limit + 1) as GrantRow[];
      return page(rows, request.limit, (r) => r.grant_id, toGrant);
    },
  };

  const importers: { [K in SubjectRecordKind]: (record: SubjectRecordOf[K]) => ImportRecordResult } = {
    checkpoint: (record: CheckpointRecord) => {
      if (stmt("SELECT 1 FROM checkpoints WHERE subject_id = ? AND checkpoint_id = ?").get(record.subjectId, record.id) !== undefined) return "skipped";
      stmt("INSERT INTO checkpoints (subject_id, checkpoint_id, resume, digest, device_id, platform_id, created_at, ord) VALUES (?, ?, ?, ?, ?, ?, ?, ?)").run(
        record.subjectId,
        record.id,
        JSON.stringify(record.resume),
        record.digest,
        record.deviceId ?? null,
        record.platformId,
        record.createdAt.getTime(),
        ctx.nextOrd(record.subjectId),
      );
      const insert = stmt("INSERT INTO checkpoint_entries (subject_id, checkpoint_id, idx, stream_id, stream_uid, stream_type, owner_platform, version, head_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
      record.entries.forEach((entry, idx) => {
        // Visibility is decided on the stream's type and owner as this server knows them.
        const stream = stmt("SELECT type, owner_platform FROM streams WHERE subject_id = ? AND uid = ?").get(record.subjectId, entry.streamUid) as { type: string; owner_platform: string } | undefined;
        insert.run(record.subjectId, record.id, idx, entry.streamId, entry.streamUid, stream?.type ?? entry.streamType, stream?.owner_platform ?? entry.ownerPlatformId, entry.version, entry.headHash);
      });
      return "imported";
    },
    "account-link": (record) => {
      const existing = stmt("SELECT subject_id FROM account_links WHERE platform_id = ? AND account_id = ?").get(record.platformId, record.accountId) as { subject_id: string } | undefined;
      if (existing !== undefined) return existing.subject_id === record.subjectId ? "skipped" : "linked-elsewhere";
      if (stmt("SELECT 1 FROM account_links WHERE subject_id = ? AND link_id = ?").get(record.subjectId, record.id) !== undefined) return "skipped";
      stmt("INSERT INTO account_links (subject_id, link_id, platform_id, account_id, created_at, ord) VALUES (?, ?, ?, ?, ?, ?)").run(
        record.subjectId,
        record.id,
        record.platformId,
        record.accountId,
        record.createdAt.getTime(),
        ctx.nextOrd(record.subjectId),
      );
      return "imported";
    },
    device: (record) => {
      if (stmt("SELECT 1 FROM devices WHERE subject_id = ? AND device_id = ?").get(record.subjectId, record.id) !== undefined) return "skipped";
      stmt("INSERT INTO devices (subject_id, device_id, platform_id, display_name, created_at, revoked_at, ord) VALUES (?, ?, ?, ?, ?, ?, ?)").run(
        record.subjectId,
        record.id,
        record.platformId,
        record.displayName,
        record.createdAt.getTime(),
        record.revokedAt?.getTime() ?? null,
        ctx.nextOrd(record.subjectId),
      );
      return "imported";
    },
    grant: (record) => {
      if (stmt("SELECT 1 FROM grants WHERE subject_id = ? AND grant_id = ?").get(record.subjectId, record.id) !== undefined) return "skipped";
      stmt("INSERT INTO grants (subject_id, grant_id, grantor_platform, grantee_platform, stream_type, access, created_at, revoked_at, ord) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)").run(
        record.subjectId,
        record.id,
        record.grantorPlatformId,
        record.granteePlatformId,
        record.streamType,
        record.access,
        record.createdAt.getTime(),
        record.revokedAt?.getTime() ?? null,
        ctx.nextOrd(record.subjectId),
      );
      return "imported";
    },
  };

  /** Undefined when a deletion of this id began meanwhile: the caller waits for it and tries again. */
  const importStream = (input: ImportStreamInput): ImportStreamResult | undefined =>
    write((sink): ImportStreamResult | undefined => {
      if (!ctx.subjectExists(input.subjectId)) return { kind: "subject-not-found" };
      const existing = ctx.streamRow(input.subjectId, input.id);
      if (existing !== undefined) return existing.uid === input.uid ? { kind: "exists", stream: toStream(existing) } : { kind: "id-taken" };
      if (ctx.purgePending(input.subjectId, input.id)) return undefined;
      if (stmt("SELECT 1 FROM streams WHERE subject_id = ? AND uid = ?").get(input.subjectId, input.uid) !== undefined) return { kind: "uid-taken" };
      const count = (stmt("SELECT COUNT(*) AS n FROM streams WHERE subject_id = ?").get(input.subjectId) as { n: number }).n;
      if (count >= input.maxStreamsPerSubject) return { kind: "limit-reached" };
      const now = input.now.getTime();
      const row: StreamRow = {
        subject_id: input.subjectId,
        stream_id: input.id,
        uid: input.uid,
        type: input.type,
        encoding: input.encoding,
        conflict_policy: input.conflictPolicy,
        owner_platform: input.ownerPlatformId,
        genesis_hash: Buffer.from(input.genesisHash),
        head_version: input.horizonVersion,
        head_hash: Buffer.from(input.horizonHash),
        horizon_version: input.horizonVersion,
        horizon_hash: Buffer.from(input.horizonHash),
        created_at: input.createdAt.getTime(),
        updated_at: now,
      };
      const jsonState = input.base.kind === "json" ? input.base.state : undefined;
      ctx.insertStream(row, jsonState);
      if (input.base.kind === "opaque-snapshot") {
        const key = [input.subjectId, input.id, input.horizonVersion] as const;
        const state = input.base.state;
        stmt("INSERT INTO snapshots (subject_id, stream_id, version, head_hash, size_bytes, snapshot_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)").run(
          ...key,
          Buffer.from(input.horizonHash),
          state.length,
          Buffer.from(input.base.snapshotHash),
          now,
        );
        const insert = stmt("INSERT INTO snapshot_chunks (subject_id, stream_id, version, idx, data) VALUES (?, ?, ?, ?, ?)");
        for (let offset = 0, idx = 0; offset < state.length || idx === 0; offset += SNAPSHOT_CHUNK_BYTES, idx++) {
          insert.run(...key, idx, Buffer.from(state.subarray(offset, offset + SNAPSHOT_CHUNK_BYTES)));
        }
      }
      const stream = toStream(row);
      ctx.logEvent(sink, input.subjectId, { kind: "stream-created", stream }, input.now);
      return { kind: "created", stream };
    });

  const importDeltas = (input: ImportDeltasInput): ImportDeltasResult =>
    write((sink): ImportDeltasResult => {
      const row = ctx.streamRow(input.subjectId, input.streamId);
      if (row === undefined || row.uid !== input.streamUid) return { kind: "stream-not-found" };
      let skipped = 0;
      const fresh: ImportDeltasInput["deltas"][number][] = [];
      for (const delta of input.deltas) {
        if (delta.version > row.head_version) {
          fresh.push(delta);
          continue;
        }
        skipped += 1;
        // Below the horizon nothing is left to compare with; inside it, the stored chain must be the same one.
        if (delta.version <= row.horizon_version) continue;
        const stored = delta.version === row.head_version ? row.head_hash : (stmt(`SELECT hash FROM deltas WHERE stream_key = ${STREAM_KEY} AND version = ?`).get(row.subject_id, row.stream_id, delta.version) as { hash: Buffer } | undefined)?.hash;
        if (stored === undefined || !Buffer.from(delta.hash).equals(stored)) return { kind: "chain-mismatch", version: delta.version };
      }
      if (fresh.length === 0) return { kind: "imported", stream: toStream(row), imported: 0, skipped };
      const first = fresh[0]!;
      if (first.version !== row.head_version + 1) return { kind: "gap", headVersion: row.head_version };
      if (!Buffer.from(first.prevHash).equals(row.head_hash)) return { kind: "chain-mismatch", version: first.version };

      const json = input.stateAfter !== undefined && row.encoding !== Encoding.Opaque;
      if (json) {
        // The caller may apply fewer (a call's bounds, see ImportDeltasInput): only those are stored.
        const taken = input.stateAfter!({ stream: toStream(row), stateLag: ctx.stateLag(row.subject_id, row.stream_id) }, fresh);
        if (taken !== undefined && taken < fresh.length) fresh.length = taken;
      }
      const insert = stmt(
        `INSERT INTO deltas (stream_key, version, payload, prev_hash, hash, device_id, client_sequence, batch_first, batch_size, committed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const streamKey = (stmt(STREAM_KEY_OF).get(row.subject_id, row.stream_id) as { stream_key: number }).stream_key;
      fresh.forEach((d, i) => {
        const previous = i === 0 ? row.head_hash : fresh[i - 1]!.hash;
        insert.run(streamKey, d.version, d.payload, storedPrevHash(d.prevHash, previous), d.hash, d.deviceId ?? null, d.clientSequence, d.batchFirstVersion, d.batchSize, d.committedAt.getTime());
      });
      const last = fresh[fresh.length - 1]!;
      const nowMs = input.now.getTime();
      stmt("UPDATE streams SET head_version = ?, head_hash = ?, updated_at = ? WHERE subject_id = ? AND stream_id = ?").run(
        last.version,
        last.hash,
        nowMs,
        row.subject_id,
        row.stream_id,
      );
      if (json) ctx.addStateLag(row.subject_id, row.stream_id, fresh.reduce((sum, d) => sum + d.payload.length, 0));

      // Each batch that this call completes: its outcome for the device that wrote it, and its event.
      // Its deltas come from this call's input; only those an earlier call stored are read back.
      const ref = { id: row.stream_id, uid: row.uid, type: row.type, ownerPlatformId: row.owner_platform };
      const asRecord = (d: (typeof fresh)[number]): DeltaRecord => ({ ...d, subjectId: row.subject_id, streamId: row.stream_id, streamUid: row.uid, encoding: row.encoding as DeltaRecord["encoding"] });
      for (let i = 0; i < fresh.length; i++) {
        const d = fresh[i]!;
        const batchLast = d.batchFirstVersion + d.batchSize - 1;
        if (d.version !== batchLast) continue;
        const whole = d.batchFirstVersion > row.horizon_version;
        const inInput = Math.min(d.batchSize, i + 1);
        const stored =
          whole && inInput < d.batchSize
            ? ctx.linkedDeltas(row, stmt(`${SELECT_DELTAS} AND d.version >= ? AND d.version < ? ORDER BY d.version`).all(row.subject_id, row.stream_id, d.batchFirstVersion, fresh[i + 1 - inInput]!.version) as DeltaRow[])
            : [];
        const batch: DeltaRecord[] = whole ? [...stored, ...fresh.slice(i + 1 - inInput, i + 1).map(asRecord)] : [];
        if (whole && d.deviceId !== undefined && d.clientSequence > 0 && batch.length === d.batchSize) {
          // No request fingerprint travels in a bundle: an empty one marks an outcome that any
          // repeat of its sequence replays (PORT-027).
          // Only the device's latest outcome on the stream is kept (APPEND-060).
          stmt(
            "INSERT INTO client_outcomes (subject_id, stream_id, device_id, client_sequence, fingerprint, outcome) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (subject_id, stream_id, device_id) DO UPDATE SET client_sequence = excluded.client_sequence, fingerprint = excluded.fingerprint, outcome = excluded.outcome WHERE excluded.client_sequence > client_outcomes.client_sequence",
          ).run(
            row.subject_id,
            row.stream_id,
            d.deviceId,
            d.clientSequence,
            Buffer.alloc(0),
            encodeOutcome({ receipts: batch.map((b) => ({ version: b.version, hash: b.hash })), headVersion: batchLast, headHash: d.hash }),
          );
        }
        ctx.logEvent(sink, row.subject_id, { kind: "deltas-appended", stream: ref, firstVersion: d.batchFirstVersion, count: d.batchSize, deltas: batch.length === d.batchSize ? batch : [] }, input.now);
      }
      return { kind: "imported", stream: toStream({ ...row, head_version: last.version, head_hash: Buffer.from(last.hash), updated_at: nowMs }), imported: fresh.length, skipped };
    });

  return {
    async listStreamsByUid(subjectId, request) {
      const rows = stmt(`SELECT ${ctx.streamColumns} FROM streams WHERE subject_id = ? AND uid > ? ORDER BY uid LIMIT ?`).all(subjectId, request.after ?? "", request.limit + 1) as StreamRow[];
      return page(rows, request.limit, (r) => r.uid, toStream);
    },
    async listSubjectRecords(subjectId, kind, request) {
      return listers[kind](subjectId, request);
    },
    async importStream(input) {
      // The rows of a deleted stream of this id would become this stream's.
      return ctx.createWhenPurged(input.subjectId, input.id, () => importStream(input));
    },
    async importDeltas(input) {
      return importDeltas(input);
    },
    async importSubjectRecord(kind, record) {
      return write(() => {
        if (!ctx.subjectExists(record.subjectId)) throw new Error("import into a missing subject");
        return (importers[kind] as (r: typeof record) => ImportRecordResult)(record);
      });
    },

    async recordSubjectMove(move: SubjectMoveRecord) {
      write(() => {
        stmt("INSERT OR REPLACE INTO subject_moves (subject_id, target, target_subject, moved_at) VALUES (?, ?, ?, ?)").run(move.subjectId, move.target, move.targetSubject, move.movedAt.getTime());
      });
      ctx.notify({ kind: "subject-moved", subjectId: move.subjectId, target: move.target, targetSubject: move.targetSubject });
    },
    async getSubjectMove(subjectId) {
      const row = stmt("SELECT * FROM subject_moves WHERE subject_id = ?").get(subjectId) as { subject_id: string; target: string; target_subject: string; moved_at: number } | undefined;
      return row === undefined ? undefined : { subjectId: row.subject_id, target: row.target, targetSubject: row.target_subject, movedAt: new Date(row.moved_at) };
    },
    async eraseMovedSubjects(before) {
      const rows = stmt("SELECT subject_id FROM subject_moves WHERE moved_at < ? LIMIT 100").all(before.getTime()) as { subject_id: string }[];
      let erased = 0;
      for (const { subject_id } of rows) if (await ctx.eraseSubject(subject_id)) erased += 1;
      return erased;
    },

    async putMigration(migration: MigrationRecord, options) {
      return write(() => {
        const stored = stmt("SELECT body FROM migrations WHERE subject_id = ? AND migration_id = ?").get(migration.subjectId, migration.id) as { body: string } | undefined;
        if (stored !== undefined) {
          const { state, committing } = decodeMigration(stored.body);
          if (state !== "copying" && state !== "switching") return "stale" as const;
          if (options?.ifState !== undefined && state !== options.ifState) return "stale" as const;
          if (committing === true && migration.committing !== true) return "stale" as const;
        }
        const active = migration.state === "copying" || migration.state === "switching" ? 1 : 0;
        if (active === 1) {
          const other = stmt("SELECT 1 FROM migrations WHERE subject_id = ? AND active = 1 AND migration_id <> ?").get(migration.subjectId, migration.id);
          if (other !== undefined) return "conflict" as const;
        }
        const lease = options?.lease;
        stmt(
          `INSERT INTO migrations (subject_id, migration_id, active, body, lease_owner, lease_until) VALUES (?, ?, ?, ?, ?, ?)
           ON CONFLICT (subject_id, migration_id) DO UPDATE SET active = excluded.active, body = excluded.body,
             lease_owner = COALESCE(excluded.lease_owner, lease_owner), lease_until = MAX(excluded.lease_until, lease_until)`,
        ).run(migration.subjectId, migration.id, active, JSON.stringify(migration), lease?.owner ?? null, lease?.until.getTime() ?? 0);
        return "stored" as const;
      });
    },
    async getMigration(subjectId, migrationId) {
      const row = stmt("SELECT body FROM migrations WHERE subject_id = ? AND migration_id = ?").get(subjectId, migrationId) as { body: string } | undefined;
      return row === undefined ? undefined : decodeMigration(row.body);
    },
    async failInterruptedMigrations(error, now) {
      // Run by every maintenance pass: a write transaction (which also forgets the cached
      // auth facts) only when there is a migration to end.
      const due = stmt("SELECT 1 FROM migrations WHERE active = 1 AND lease_until <= ? LIMIT 1").get(now.getTime());
      if (due === undefined) return 0;
      return write(() => {
        const rows = stmt("SELECT body FROM migrations WHERE active = 1 AND lease_until <= ?").all(now.getTime()) as { body: string }[];
        for (const row of rows) {
          const migration = { ...decodeMigration(row.body), state: "failed" as const, error, endedAt: now };
          stmt("UPDATE migrations SET active = 0, body = ? WHERE subject_id = ? AND migration_id = ?").run(JSON.stringify(migration), migration.subjectId, migration.id);
        }
        return rows.length;
      });
    },
    async findActiveMigration(subjectId) {
      const row = stmt("SELECT body FROM migrations WHERE subject_id = ? AND active = 1 LIMIT 1").get(subjectId) as { body: string } | undefined;
      return row === undefined ? undefined : decodeMigration(row.body);
    },
  };
}

function decodeMigration(body: string): MigrationRecord {
  const raw = JSON.parse(body) as Omit<MigrationRecord, "createdAt" | "endedAt"> & { createdAt: string; endedAt?: string };
  return { ...raw, switchPauseMs: raw.switchPauseMs ?? undefined, createdAt: new Date(raw.createdAt), endedAt: raw.endedAt === undefined ? undefined : new Date(raw.endedAt) };
}
