import type {
  ImportDeltasInput,
  ImportDeltasResult,
  ImportRecordResult,
  ImportStreamResult,
  MigrationRecord,
  PortabilityStore,
  SubjectRecordKind,
  SubjectRecordOf,
} from "../portability-types.js";
import type { DeltaRecord, Page, PageRequest, StateLag } from "../types.js";
import { Encoding } from "../types.js";
import {
  encodeOutcome,
  toCheckpoint,
  toDelta,
  toGrant,
  toStream,
  type CheckpointEntryRow,
  type CheckpointRow,
  type DeltaRow,
  type DeviceRow,
  type GrantRow,
  type LinkRow,
  type StreamRow,
} from "../codec.js";
import type { Query } from "./connection.js";
import { escapeText, toPgDevice, toPgLink } from "./text.js";
import { PAST_HOLDS, type SubjectTx } from "./subject-tx.js";

/** What the portability part of the PostgreSQL store borrows from the rest of it. */
export interface PgPortabilityContext {
  readonly query: Query;
  readonly write: <T>(subjectId: string, fn: (tx: SubjectTx) => Promise<T>, holder?: string | typeof PAST_HOLDS) => Promise<T>;
  readonly snapshotRead: <T>(fn: (q: Query) => Promise<T>) => Promise<T>;
  readonly streamRow: (q: Query, subjectId: string, streamId: string) => Promise<StreamRow | undefined>;
  /** How far a JSON stream's head is from its newest stored state. */
  readonly stateLag: (q: Query, subjectId: string, streamId: string) => Promise<StateLag>;
  readonly addStateLag: (q: Query, subjectId: string, streamId: string, bytes: number) => Promise<unknown>;
  readonly insertStream: (q: Query, row: StreamRow, jsonState: Uint8Array | undefined) => Promise<void>;
  readonly insertDeltas: (q: Query, rows: readonly (readonly unknown[])[]) => Promise<void>;
  readonly checkpointEntries: (q: Query, subjectId: string, checkpointId: string) => Promise<CheckpointEntryRow[]>;
  readonly eraseSubject: (subjectId: string) => Promise<boolean>;
  readonly streamColumns: string;
  /** Columns of a read of deltas (payloads kept in chunks are then read by {@link withPayloads}). */
  readonly deltaColumns: string;
  /** `deltas` (mapped from `rows`) with the payloads kept in chunks read; undefined when one is gone. */
  readonly withPayloads: (q: Query, row: StreamRow, deltas: readonly DeltaRecord[], rows: readonly DeltaRow[]) => Promise<DeltaRecord[] | undefined>;
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
 * The `PortabilityStore` half of the PostgreSQL store, the same intents as SQLite's: every
 * import intent is one transaction of its subject, so an interrupted import leaves whole
 * records behind and a resumed one skips them.
 */
export function createPgPortability(ctx: PgPortabilityContext): PortabilityStore {
  const { query, write } = ctx;

  const listers: { [K in SubjectRecordKind]: (subjectId: string, request: PageRequest) => Promise<Page<SubjectRecordOf[K]>> } = {
    checkpoint: (subjectId, request) =>
      ctx.snapshotRead(async (q) => {
        const rows = await q<CheckpointRow>("SELECT * FROM checkpoints WHERE subject_id = $1 AND checkpoint_id > $2 ORDER BY checkpoint_id LIMIT $3", [
          subjectId,
          request.after ?? "",
          request.limit + 1,
        ]);
        const entries = new Map<string, CheckpointEntryRow[]>();
        for (const r of rows.slice(0, request.limit)) entries.set(r.checkpoint_id, await ctx.checkpointEntries(q, subjectId, r.checkpoint_id));
        return page(rows, request.limit, (r) => r.checkpoint_id, (r) => toCheckpoint(r, entries.get(r.checkpoint_id) ?? []));
      }),
    "account-link": async (subjectId, request) =>
      page(
        await query<LinkRow>("SELECT * FROM account_links WHERE subject_id = $1 AND link_id > $2 ORDER BY link_id LIMIT $3", [subjectId, request.after ?? "", request.limit + 1]),
        request.limit,
        (r) => r.link_id,
        toPgLink,
      ),
    device: async (subjectId, request) =>
      page(
        await query<DeviceRow>("SELECT * FROM devices WHERE subject_id = $1 AND device_id > $2 ORDER BY device_id LIMIT $3", [subjectId, request.after ?? "", request.limit + 1]),
        request.limit,
        (r) => r.device_id,
        toPgDevice,
      ),
    grant: async (subjectId, request) =>
      page(
        await query<GrantRow>("SELECT * FROM grants WHERE subject_id = $1 AND grant_id > $2 ORDER BY grant_id LIMIT $3", [subjectId, request.after ?? "", request.limit + 1]),
        request.limit,
        (r) => r.grant_id,
        toGrant,
      ),
  };

  const importers: { [K in SubjectRecordKind]: (tx: SubjectTx, record: SubjectRecordOf[K]) => Promise<ImportRecordResult> } = {
    checkpoint: async (tx, record) => {
      const q = tx.query;
      if ((await q("SELECT 1 FROM checkpoints WHERE subject_id = $1 AND checkpoint_id = $2", [record.subjectId, record.id])).length > 0) return "skipped";
      await q(
        "INSERT INTO checkpoints (subject_id, checkpoint_id, resume, digest, device_id, platform_id, created_at, ord) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [record.subjectId, record.id, JSON.stringify(record.resume), record.digest, record.deviceId ?? null, record.platformId, record.createdAt.getTime(), tx.ord()],
      );
      for (const [idx, entry] of record.entries.entries()) {
        // Visibility is decided on the stream's type and owner as this server knows them.
        const stream = (
          await q<{ type: string; owner_platform: string }>("SELECT type, owner_platform FROM streams WHERE subject_id = $1 AND uid = $2", [record.subjectId, entry.streamUid])
        )[0];
        await q(
          "INSERT INTO checkpoint_entries (subject_id, checkpoint_id, idx, stream_id, stream_uid, stream_type, owner_platform, version, head_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
          [
            record.subjectId,
            record.id,
            idx,
            entry.streamId,
            entry.streamUid,
            stream?.type ?? entry.streamType,
            stream?.owner_platform ?? entry.ownerPlatformId,
            entry.version,
            entry.headHash,
          ],
        );
      }
      return "imported";
    },
    "account-link": async (tx, record) => {
      const q = tx.query;
      const existing = (
        await q<{ subject_id: string }>("SELECT subject_id FROM account_directory WHERE platform_id = $1 AND account_id = $2", [record.platformId, escapeText(record.accountId)])
      )[0];
      if (existing !== undefined) return existing.subject_id === record.subjectId ? "skipped" : "linked-elsewhere";
      if ((await q("SELECT 1 FROM account_links WHERE subject_id = $1 AND link_id = $2", [record.subjectId, record.id])).length > 0) return "skipped";
      const claimed = await q(
        "INSERT INTO account_directory (platform_id, account_id, subject_id, link_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
        [record.platformId, escapeText(record.accountId), record.subjectId, record.id],
      );
      // Linked by a concurrent sign-in meanwhile, necessarily to another subject (this one is locked).
      if (claimed.length === 0) return "linked-elsewhere";
      await q("INSERT INTO account_links (subject_id, link_id, platform_id, account_id, created_at, ord) VALUES ($1, $2, $3, $4, $5, $6)", [
        record.subjectId,
        record.id,
        record.platformId,
        escapeText(record.accountId),
        record.createdAt.getTime(),
        tx.ord(),
      ]);
      return "imported";
    },
    device: async (tx, record) => {
      if ((await tx.query("SELECT 1 FROM devices WHERE subject_id = $1 AND device_id = $2", [record.subjectId, record.id])).length > 0) return "skipped";
      await tx.query(
        "INSERT INTO devices (subject_id, device_id, platform_id, display_name, created_at, revoked_at, ord) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [record.subjectId, record.id, record.platformId, escapeText(record.displayName), record.createdAt.getTime(), record.revokedAt?.getTime() ?? null, tx.ord()],
      );
      return "imported";
    },
    grant: async (tx, record) => {
      if ((await tx.query("SELECT 1 FROM grants WHERE subject_id = $1 AND grant_id = $2", [record.subjectId, record.id])).length > 0) return "skipped";
      await tx.query(
        "INSERT INTO grants (subject_id, grant_id, grantor_platform, grantee_platform, stream_type, access, created_at, revoked_at, ord) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [
          record.subjectId,
          record.id,
          record.grantorPlatformId,
          record.granteePlatformId,
          record.streamType,
          record.access,
          record.createdAt.getTime(),
          record.revokedAt?.getTime() ?? null,
          tx.ord(),
        ],
      );
      return "imported";
    },
  };

  const importDeltas = (input: ImportDeltasInput): Promise<ImportDeltasResult> =>
    write(input.subjectId, async (tx): Promise<ImportDeltasResult> => {
      const q = tx.query;
      const row = await ctx.streamRow(q, input.subjectId, input.streamId);
      if (row === undefined || row.uid !== input.streamUid) return { kind: "stream-not-found" };
      let skipped = 0;
      const fresh: ImportDeltasInput["deltas"][number][] = [];
      const held = input.deltas.filter((d) => d.version <= row.head_version && d.version > row.horizon_version && d.version !== row.head_version);
      const storedHashes = new Map<number, Buffer>();
      if (held.length > 0) {
        const rows = await q<{ version: number; hash: Buffer }>(
          "SELECT version, hash FROM deltas WHERE subject_id = $1 AND stream_id = $2 AND version = ANY($3::bigint[])",
          [row.subject_id, row.stream_id, held.map((d) => d.version)],
        );
        for (const r of rows) storedHashes.set(r.version, r.hash);
      }
      for (const delta of input.deltas) {
        if (delta.version > row.head_version) {
          fresh.push(delta);
          continue;
        }
        skipped += 1;
        // Below the horizon nothing is left to compare with; inside it, the stored chain must be the same one.
        if (delta.version <= row.horizon_version) continue;
        const stored = delta.version === row.head_version ? row.head_hash : storedHashes.get(delta.version);
        if (stored === undefined || !Buffer.from(delta.hash).equals(stored)) return { kind: "chain-mismatch", version: delta.version };
      }
      if (fresh.length === 0) return { kind: "imported", stream: toStream(row), imported: 0, skipped };
      const first = fresh[0]!;
      if (first.version !== row.head_version + 1) return { kind: "gap", headVersion: row.head_version };
      if (!Buffer.from(first.prevHash).equals(row.head_hash)) return { kind: "chain-mismatch", version: first.version };

      const json = input.stateAfter !== undefined && row.encoding !== Encoding.Opaque;
      if (json) {
        // The caller may apply fewer (a call's bounds, see ImportDeltasInput): only those are stored.
        const taken = input.stateAfter!({ stream: toStream(row), stateLag: await ctx.stateLag(q, row.subject_id, row.stream_id) }, fresh);
        if (taken !== undefined && taken < fresh.length) fresh.length = taken;
      }
      await ctx.insertDeltas(
        q,
        fresh.map((d) => [
          row.subject_id,
          row.stream_id,
          d.version,
          d.payload,
          d.prevHash,
          d.hash,
          d.deviceId ?? null,
          d.clientSequence,
          d.batchFirstVersion,
          d.batchSize,
          d.committedAt.getTime(),
        ]),
      );
      const last = fresh[fresh.length - 1]!;
      const nowMs = input.now.getTime();
      await q("UPDATE streams SET head_version = $1, head_hash = $2, updated_at = $3 WHERE subject_id = $4 AND stream_id = $5", [
        last.version,
        last.hash,
        nowMs,
        row.subject_id,
        row.stream_id,
      ]);
      if (json) await ctx.addStateLag(q, row.subject_id, row.stream_id, fresh.reduce((sum, d) => sum + d.payload.length, 0));

      // Each batch that this call completes: its outcome for the device that wrote it, and its event.
      const ref = { id: row.stream_id, uid: row.uid, type: row.type, ownerPlatformId: row.owner_platform };
      for (const d of fresh) {
        const batchLast = d.batchFirstVersion + d.batchSize - 1;
        if (d.version !== batchLast) continue;
        const whole = d.batchFirstVersion > row.horizon_version;
        const rows = whole
          ? await q<DeltaRow>(
              `SELECT ${ctx.deltaColumns} FROM deltas WHERE subject_id = $1 AND stream_id = $2 AND version >= $3 AND version <= $4 ORDER BY version`,
              [row.subject_id, row.stream_id, d.batchFirstVersion, batchLast],
            )
          : [];
        const batch: DeltaRecord[] = (await ctx.withPayloads(q, row, rows.map((r) => toDelta(r, row)), rows)) ?? [];
        if (whole && d.deviceId !== undefined && d.clientSequence > 0 && batch.length === d.batchSize) {
          // No request fingerprint travels in a bundle: an empty one marks an outcome that any
          // repeat of its sequence replays (PORT-027).
          await q(
            // Only the device's latest outcome on the stream is kept (APPEND-060).
            `INSERT INTO client_outcomes (subject_id, stream_id, device_id, client_sequence, fingerprint, outcome) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (subject_id, stream_id, device_id) DO UPDATE SET client_sequence = EXCLUDED.client_sequence, fingerprint = EXCLUDED.fingerprint, outcome = EXCLUDED.outcome
             WHERE EXCLUDED.client_sequence > client_outcomes.client_sequence`,
            [
              row.subject_id,
              row.stream_id,
              d.deviceId,
              d.clientSequence,
              Buffer.alloc(0),
              encodeOutcome({ receipts: batch.map((b) => ({ version: b.version, hash: b.hash })), headVersion: batchLast, headHash: d.hash }),
            ],
          );
        }
        tx.log(
          { kind: "deltas-appended", stream: ref, firstVersion: d.batchFirstVersion, count: d.batchSize, deltas: batch.length === d.batchSize ? batch : [] },
          input.now,
        );
      }
      return {
        kind: "imported",
        stream: toStream({ ...row, head_version: last.version, head_hash: Buffer.from(last.hash), updated_at: nowMs }),
        imported: fresh.length,
        skipped,
      };
    });

  return {
    async listStreamsByUid(subjectId, request) {
      const rows = await query<StreamRow>(`SELECT ${ctx.streamColumns} FROM streams WHERE subject_id = $1 AND uid > $2 ORDER BY uid LIMIT $3`, [
        subjectId,
        request.after ?? "",
        request.limit + 1,
      ]);
      return page(rows, request.limit, (r) => r.uid, toStream);
    },
    async listSubjectRecords(subjectId, kind, request) {
      return listers[kind](subjectId, request);
    },

    async importStream(input) {
      return write(input.subjectId, async (tx): Promise<ImportStreamResult> => {
        const q = tx.query;
        if (!tx.exists) return { kind: "subject-not-found" };
        const existing = await ctx.streamRow(q, input.subjectId, input.id);
        if (existing !== undefined) return existing.uid === input.uid ? { kind: "exists", stream: toStream(existing) } : { kind: "id-taken" };
        if ((await q("SELECT 1 FROM streams WHERE subject_id = $1 AND uid = $2", [input.subjectId, input.uid])).length > 0) return { kind: "uid-taken" };
        const count = (await q<{ n: number }>("SELECT COUNT(*) AS n FROM streams WHERE subject_id = $1", [input.subjectId]))[0]?.n ?? 0;
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
        await ctx.insertStream(q, row, input.base.kind === "json" ? input.base.state : undefined);
        if (input.base.kind === "opaque-snapshot") {
          const key = [input.subjectId, input.id, input.horizonVersion] as const;
          const state = input.base.state;
          await q(
            "INSERT INTO snapshots (subject_id, stream_id, version, head_hash, size_bytes, snapshot_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [...key, Buffer.from(input.horizonHash), state.length, Buffer.from(input.base.snapshotHash), now],
          );
          for (let offset = 0, idx = 0; offset < state.length || idx === 0; offset += SNAPSHOT_CHUNK_BYTES, idx++) {
            await q("INSERT INTO snapshot_chunks (subject_id, stream_id, version, idx, data) VALUES ($1, $2, $3, $4, $5)", [
              ...key,
              idx,
              Buffer.from(state.subarray(offset, offset + SNAPSHOT_CHUNK_BYTES)),
            ]);
          }
        }
        const stream = toStream(row);
        tx.log({ kind: "stream-created", stream }, input.now);
        return { kind: "created", stream };
      });
    },
    importDeltas,
    async importSubjectRecord(kind, record) {
      return write(record.subjectId, async (tx) => {
        if (!tx.exists) throw new Error("import into a missing subject");
        return (importers[kind] as (t: SubjectTx, r: typeof record) => Promise<ImportRecordResult>)(tx, record);
      });
    },

    async recordSubjectMove(move) {
      await write(move.subjectId, async (tx) => {
        await tx.query(
          `INSERT INTO subject_moves (subject_id, target, target_subject, moved_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (subject_id) DO UPDATE SET target = EXCLUDED.target, target_subject = EXCLUDED.target_subject, moved_at = EXCLUDED.moved_at`,
          [move.subjectId, move.target, move.targetSubject, move.movedAt.getTime()],
        );
        tx.notice({ kind: "subject-moved", subjectId: move.subjectId, target: move.target, targetSubject: move.targetSubject });
      });
    },
    async getSubjectMove(subjectId) {
      const row = (
        await query<{ subject_id: string; target: string; target_subject: string; moved_at: number }>("SELECT * FROM subject_moves WHERE subject_id = $1", [subjectId])
      )[0];
      return row === undefined ? undefined : { subjectId: row.subject_id, target: row.target, targetSubject: row.target_subject, movedAt: new Date(row.moved_at) };
    },
    async eraseMovedSubjects(before) {
      const rows = await query<{ subject_id: string }>("SELECT subject_id FROM subject_moves WHERE moved_at < $1 LIMIT 100", [before.getTime()]);
      let erased = 0;
      for (const { subject_id } of rows) {
        // A move keeps its subject held for good (recordHeldSubjectMove), erasing it too: the
        // hold ends first. A write that met no hold now would have passed its door before the
        // move, so long ago that its call is over; and what it wrote is erased with the rest.
        await write(subject_id, (tx) => tx.query("UPDATE subjects SET hold_until = 0 WHERE subject_id = $1 AND hold_owner IS NULL", [subject_id]), PAST_HOLDS);
        if (await ctx.eraseSubject(subject_id)) erased += 1;
      }
      return erased;
    },

    async putMigration(migration: MigrationRecord, options) {
      // Not a write of the subject's data: a migration's progress is stored while it is held too.
      return write(migration.subjectId, async (tx) => {
        const stored = (await tx.query<{ body: string }>("SELECT body FROM migrations WHERE subject_id = $1 AND migration_id = $2", [migration.subjectId, migration.id]))[0];
        if (stored !== undefined) {
          const { state, committing } = decodeMigration(stored.body);
          if (state !== "copying" && state !== "switching") return "stale" as const;
          if (options?.ifState !== undefined && state !== options.ifState) return "stale" as const;
          if (committing === true && migration.committing !== true) return "stale" as const;
        }
        const active = migration.state === "copying" || migration.state === "switching";
        if (active) {
          const other = await tx.query("SELECT 1 FROM migrations WHERE subject_id = $1 AND active AND migration_id <> $2", [migration.subjectId, migration.id]);
          if (other.length > 0) return "conflict" as const;
        }
        const lease = options?.lease;
        await tx.query(
          `INSERT INTO migrations (subject_id, migration_id, active, body, lease_owner, lease_until) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (subject_id, migration_id) DO UPDATE SET active = EXCLUDED.active, body = EXCLUDED.body,
             lease_owner = COALESCE(EXCLUDED.lease_owner, migrations.lease_owner), lease_until = GREATEST(EXCLUDED.lease_until, migrations.lease_until)`,
          [migration.subjectId, migration.id, active, JSON.stringify(migration), lease?.owner ?? null, lease?.until.getTime() ?? 0],
        );
        return "stored" as const;
      }, PAST_HOLDS);
    },
    async getMigration(subjectId, migrationId) {
      const row = (await query<{ body: string }>("SELECT body FROM migrations WHERE subject_id = $1 AND migration_id = $2", [subjectId, migrationId]))[0];
      return row === undefined ? undefined : decodeMigration(row.body);
    },
    async failInterruptedMigrations(error, now) {
      // Every replica runs this at start and as it maintains; each migration is ended under
      // its subject's lock, once, and only when nobody renewed its lease in time.
      const rows = await query<{ subject_id: string; migration_id: string }>("SELECT subject_id, migration_id FROM migrations WHERE active AND lease_until <= $1", [now.getTime()]);
      let failed = 0;
      for (const { subject_id, migration_id } of rows) {
        failed += await write(subject_id, async (tx) => {
          const row = (
            await tx.query<{ body: string }>("SELECT body FROM migrations WHERE subject_id = $1 AND migration_id = $2 AND active AND lease_until <= $3", [subject_id, migration_id, now.getTime()])
          )[0];
          if (row === undefined) return 0;
          const migration = { ...decodeMigration(row.body), state: "failed" as const, error, endedAt: now };
          await tx.query("UPDATE migrations SET active = false, body = $1 WHERE subject_id = $2 AND migration_id = $3", [JSON.stringify(migration), subject_id, migration_id]);
          return 1;
        }, PAST_HOLDS);
      }
      return failed;
    },
    async findActiveMigration(subjectId) {
      const row = (await query<{ body: string }>("SELECT body FROM migrations WHERE subject_id = $1 AND active LIMIT 1", [subjectId]))[0];
      return row === undefined ? undefined : decodeMigration(row.body);
    },
  };
}

function decodeMigration(body: string): MigrationRecord {
  const raw = JSON.parse(body) as Omit<MigrationRecord, "createdAt" | "endedAt"> & { createdAt: string; endedAt?: string };
  return { ...raw, switchPauseMs: raw.switchPauseMs ?? undefined, createdAt: new Date(raw.createdAt), endedAt: raw.endedAt === undefined ? undefined : new Date(raw.endedAt) };
}
