import { randomBytes, randomUUID } from "node:crypto";
import type pg from "pg";
import type { QueryResultRow } from "pg";
import type {
  AccountLinkRecord,
  AppendInput,
  AppendOutcome,
  AppendResult,
  CheckpointEntryRecord,
  CheckpointRecord,
  CompactInput,
  CompactResult,
  CreateCheckpointResult,
  CreateHandoffResult,
  CreateStreamResult,
  DeltaRecord,
  Durability,
  EventBounds,
  HandoffRecord,
  PutSnapshotResult,
  RedeemLinkCodeResult,
  RegisterDeviceResult,
  ResolveHandoffResult,
  SnapshotRecord,
  PutJsonStateInput,
  StateBase,
  StateLag,
  Store,
  StoreNotification,
  SubjectEvent,
  SubjectWithLink,
  VersionCheck,
} from "../types.js";
import { Encoding, Policy } from "../types.js";
import type { PortabilityStore } from "../portability-types.js";
import type { ReplicaStateStore } from "../replica-state-types.js";
import {
  decodeEventBody,
  decodeOutcome,
  encodeCheckpointStreams,
  encodeOutcome,
  toCheckpoint,
  toDelta,
  toGrant,
  toHandoff,
  toSnapshot,
  toStream,
  type CheckpointEntryRow,
  type CheckpointRow,
  type DeltaRow,
  type DeviceRow,
  type GrantRow,
  type HandoffRow,
  type LinkRow,
  type SnapshotRow,
  type StreamRow,
} from "../codec.js";
import { createPgPool, inTransaction, isStatementError, parsePgLocation, prepared, valuesList, type PgLocation, type Query } from "./connection.js";
import { channelOf, startListener, type Listener, type Notice } from "./fan-out.js";
import { isSchemaName, migratePostgres } from "./migrations.js";
import { createPgPortability } from "./portability.js";
import { createPgReplicaState } from "./replica-state.js";
import { createPgJsonStates } from "./json-states.js";
import {
  appendWithStagedPayloads,
  DELTAS_PER_READ,
  readChunked,
  STATE_READ_ATTEMPTS,
  StateReadRaced,
  withChunkedPayloads,
  yieldTurn,
  type StagedState,
  type StoredStateRef,
} from "../state-chunks.js";
import { createLanes, runSubjectTx, type PAST_HOLDS, type SubjectTx } from "./subject-tx.js";
import { comparable, escapeText, toPgDevice, toPgLink } from "./text.js";

/** Options of {@link createPostgresStore}. */
export interface PostgresStoreOptions {
  /** `postgres://user@host:port/database`, optionally with `?schema=name`. */
  readonly url: string;
  /** The schema to keep the tables in, unless the URL names one; default `continuity`. */
  readonly schema?: string;
  /** Pooled connections at most; default 10. One more is kept for LISTEN. */
  readonly poolSize?: number;
  /**
   * `full` (default) commits as the database is configured to (on disk, or on synchronous
   * standbys); `normal` sets `synchronous_commit = off` for the store's sessions: a commit is
   * acknowledged once it is in PostgreSQL's memory, so it survives the death of any Continuity
   * server but a crash of PostgreSQL itself may lose the last fraction of a second of them.
   */
  readonly durability?: Durability;
  /** Told the size of every committed append group (metrics, tests). */
  readonly onGroupCommit?: (appends: number) => void;
  /** Called when a listener throws, or the database connection reports an error. */
  readonly onListenerError?: (error: unknown) => void;
}

/** A {@link Store} on PostgreSQL, with what tests and diagnostics look at. */
export interface PostgresStore extends Store {
  /** The connection pool, for tests and diagnostics only. */
  readonly pool: pg.Pool;
  /** The schema the store's tables are in. */
  readonly schema: string;
}

interface PendingAppend {
  readonly input: AppendInput;
  /** Payloads of `input.expectedPayloads` written ahead in chunks, by the payload they hold. */
  readonly staged: ReadonlyMap<Uint8Array, StagedState>;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

/** Appends of one subject that share a transaction at most. */
const MAX_GROUP = 64;
const MISSING_STREAM: VersionCheck = { kind: "stream-not-found" };
/** The `payload` of a delta row whose payload is kept in chunks. */
const EMPTY_PAYLOAD = Buffer.alloc(0);
const STREAM_COLUMNS =
  "subject_id, stream_id, uid, type, encoding, conflict_policy, owner_platform, genesis_hash, head_version, head_hash, horizon_version, horizon_hash, created_at, updated_at";
const DELTA_COLUMNS =
  "subject_id, stream_id, version, payload, prev_hash, hash, device_id, client_sequence, batch_first, batch_size, committed_at";
/** What reads of deltas select: {@link DELTA_COLUMNS} and where a payload kept in chunks is. */
const DELTA_READ_COLUMNS = `${DELTA_COLUMNS}, payload_id, payload_chunks, payload_bytes`;
/** The SQL types of {@link DELTA_COLUMNS}, in order. */
const DELTA_TYPES = ["text", "text", "bigint", "bytea", "bytea", "bytea", "text", "bigint", "bigint", "bigint", "bigint"] as const;
const REPEATABLE_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/**
 * Opens (creating and migrating the schema as needed) a PostgreSQL store.
 *
 * Each write intent is one transaction of one subject (see `subject-tx.ts`). Appends of one
 * subject that queue up while an earlier one commits share the next transaction (group
 * commit), each deciding on the head the previous one left; if a statement fails in a group,
 * the group is rolled back and its appends are retried one by one, so none shares another's
 * fate. Reads that need several statements run in one REPEATABLE READ snapshot.
 *
 * Several servers may open the same schema: they are replicas of one store (shared epoch
 * and instance secret, writes serialized by the database, commits fanned out through
 * LISTEN/NOTIFY, see `fan-out.ts`).
 */
export async function createPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const location: PgLocation = parsePgLocation(options.url, options.schema);
  if (!isSchemaName(location.schema)) throw new Error(`invalid schema name ${JSON.stringify(location.schema)}: use a-z, 0-9 and _ (at most 40)`);
  const reportError = (error: unknown): void => options.onListenerError?.(error);
  const pool = createPgPool(location, options.poolSize ?? 10, options.durability !== "normal", reportError);
  const query: Query = async <R extends QueryResultRow>(sql: string, params?: readonly unknown[]) => (await pool.query<R>(prepared(sql, params))).rows;
  const origin = randomUUID();
  const notify = { channel: channelOf(location.schema), origin };
  const lanes = createLanes();
  const listeners = new Set<(n: StoreNotification) => void>();
  let closed = false;
  const jsonStates = createPgJsonStates(query, () => closed, reportError);

  try {
    const client = await pool.connect();
    try {
      await migratePostgres(client, location.schema);
    } finally {
      client.release();
    }
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }

  const meta = async (key: string, make: () => Buffer): Promise<Buffer> => {
    // First writer wins, so replicas starting together agree on one value.
    await query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", [key, make()]);
    const row = (await query<{ value: Buffer }>("SELECT value FROM meta WHERE key = $1", [key]))[0];
    if (row === undefined) throw new Error(`meta ${key} is missing`);
    return row.value;
  };
  const epoch = (await meta("epoch", () => Buffer.from(randomUUID().replaceAll("-", ""), "utf8"))).toString("utf8");
  const secret = await meta("instance_secret", () => randomBytes(32));
  // Chunks of state writes a crash cut short (on this server or another replica).
  jsonStates.sweepOrphans();

  // --- notifications --------------------------------------------------------------------

  const notifyLocal = (notification: StoreNotification): void => {
    for (const listener of listeners) {
      try {
        listener(notification);
      } catch (error) {
        reportError(error);
      }
    }
  };
  const noticeToNotification = (notice: Exclude<Notice, { kind: "events" }>): StoreNotification => notice;

  // Remote commits are read back from the log, one subject at a time in notice order.
  const remoteLanes = createLanes();
  const onNotice = (notice: Notice): void => {
    if (closed || listeners.size === 0) return;
    if (notice.kind !== "events") {
      void remoteLanes.run(notice.subjectId, async () => notifyLocal(noticeToNotification(notice)));
      return;
    }
    void remoteLanes.run(notice.subjectId, async () => {
      const count = notice.last - notice.first + 1;
      // A read queued behind others may start after close() ended the pool.
      if (count <= 0 || closed) return;
      const events = await readEvents(notice.subjectId, notice.first - 1, count);
      if (events.length > 0 && !closed) notifyLocal({ kind: "events", subjectId: notice.subjectId, events });
    }).catch(reportError);
  };
  let listener: Listener | undefined;
  try {
    listener = await startListener(location, origin, { onNotice, onReconnect: () => undefined, onError: reportError });
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw error;
  }

  // --- transactions ---------------------------------------------------------------------

  /**
   * Runs a write intent of one subject in its lane and transaction; its events and notices
   * reach this process's listeners once it committed, before the subject's next write runs.
   */
  const write = <T>(subjectId: string, fn: (tx: SubjectTx) => Promise<T>, holder?: string | typeof PAST_HOLDS): Promise<T> => {
    if (closed) return Promise.reject(new Error("store is closed"));
    return lanes.run(subjectId, async () => {
      const outcome = await inTransaction(pool, (q) => runSubjectTx(q, subjectId, notify, fn, holder));
      emit(subjectId, outcome.events, outcome.notices);
      return outcome.result;
    });
  };
  const emit = (subjectId: string, events: readonly SubjectEvent[], notices: readonly Notice[]): void => {
    if (events.length > 0) notifyLocal({ kind: "events", subjectId, events });
    for (const notice of notices) if (notice.kind !== "events") notifyLocal(noticeToNotification(notice));
  };
  /** Several reads that must see one state. */
  const snapshotRead = <T>(fn: (q: Query) => Promise<T>): Promise<T> => inTransaction(pool, (q) => fn(q), REPEATABLE_READ);

  // --- row helpers ----------------------------------------------------------------------

  const streamRow = async (q: Query, subjectId: string, streamId: string): Promise<StreamRow | undefined> =>
    (await q<StreamRow>(`SELECT ${STREAM_COLUMNS} FROM streams WHERE subject_id = $1 AND stream_id = $2`, [subjectId, streamId]))[0];

  /** How far a stream's head is from its newest stored state. */
  const stateLag = async (q: Query, subjectId: string, streamId: string): Promise<StateLag> => {
    const row = (
      await q<{ state_version: number; state_lag_bytes: number }>("SELECT state_version, state_lag_bytes FROM streams WHERE subject_id = $1 AND stream_id = $2", [
        subjectId,
        streamId,
      ])
    )[0];
    return { version: row?.state_version ?? 0, bytes: row?.state_lag_bytes ?? 0 };
  };
  /** Adds payload bytes to what separates the head from the newest stored state. */
  const addStateLag = (q: Query, subjectId: string, streamId: string, bytes: number): Promise<unknown> =>
    q("UPDATE streams SET state_lag_bytes = state_lag_bytes + $1 WHERE subject_id = $2 AND stream_id = $3", [bytes, subjectId, streamId]);
  /** Records a stored state at `version` as the newest, if it is. */
  const storedStateAt = (q: Query, subjectId: string, streamId: string, version: number): Promise<unknown> =>
    q(
      `UPDATE streams SET state_version = $3, state_lag_bytes = (SELECT COALESCE(SUM(length(payload) + payload_bytes), 0) FROM deltas WHERE subject_id = $1 AND stream_id = $2 AND version > $3)
       WHERE subject_id = $1 AND stream_id = $2 AND state_version < $3`,
      [subjectId, streamId, version],
    );

  const checkVersion = (row: StreamRow, version: number): VersionCheck | undefined => {
    if (version > row.head_version) return { kind: "ahead-of-head", headVersion: row.head_version };
    if (version < row.horizon_version) return { kind: "below-horizon", horizonVersion: row.horizon_version };
    return undefined;
  };

  const hashAt = async (q: Query, row: StreamRow, version: number): Promise<Buffer> => {
    if (version === row.head_version) return row.head_hash;
    if (version === row.horizon_version) return row.horizon_hash;
    const delta = (
      await q<{ hash: Buffer }>("SELECT hash FROM deltas WHERE subject_id = $1 AND stream_id = $2 AND version = $3", [row.subject_id, row.stream_id, version])
    )[0];
    if (delta === undefined) throw new Error(`retained delta ${version} is missing`);
    return delta.hash;
  };

  /** A delta payload kept in chunks, read by `q` a chunk per statement; undefined when it is gone. */
  const readPayload = (q: Query, subjectId: string, streamId: string, ref: StoredStateRef): Promise<Buffer | undefined> =>
    readChunked(ref.chunks, ref.sizeBytes, async (idx) => {
      const rows = await q<{ data: Buffer }>("SELECT data FROM json_state_chunks WHERE subject_id = $1 AND stream_id = $2 AND state_id = $3 AND idx = $4", [
        subjectId,
        streamId,
        ref.stateId,
        idx,
      ]);
      return rows[0]?.data;
    });
  /** `deltas` (mapped from `rows`) with the payloads kept in chunks read; undefined when one is gone. */
  const withPayloads = (q: Query, row: { subject_id: string; stream_id: string }, deltas: readonly DeltaRecord[], rows: readonly DeltaRow[]): Promise<DeltaRecord[] | undefined> =>
    withChunkedPayloads(deltas, rows, (ref) => readPayload(q, row.subject_id, row.stream_id, ref));

  /** Deltas with their payloads; undefined when one was deleted while its chunks were read (never inside a snapshot). */
  const deltasBetween = async (q: Query, row: StreamRow, afterVersion: number, upTo: number, limit: number): Promise<DeltaRecord[] | undefined> => {
    const rows = await q<DeltaRow>(
      `SELECT ${DELTA_READ_COLUMNS} FROM deltas WHERE subject_id = $1 AND stream_id = $2 AND version > $3 AND version <= $4 ORDER BY version LIMIT $5`,
      [row.subject_id, row.stream_id, afterVersion, upTo, limit],
    );
    return withPayloads(q, row, rows.map((d) => toDelta(d, row)), rows);
  };

  /**
   * Deltas `afterVersion + 1 ..= upTo`, a statement per {@link DELTAS_PER_READ} (they may weigh
   * as much as a state, and pg parses them on the loop); undefined when some are gone meanwhile.
   */
  const deltasInPages = async (row: StreamRow, afterVersion: number, upTo: number): Promise<DeltaRecord[] | undefined> => {
    const deltas: DeltaRecord[] = [];
    for (let at = afterVersion; at < upTo; ) {
      if (at > afterVersion) await yieldTurn();
      const page = await deltasBetween(query, row, at, upTo, DELTAS_PER_READ);
      if (page === undefined || page.length === 0 || page.some((d, i) => d.version !== at + 1 + i)) return undefined;
      deltas.push(...page);
      at = page[page.length - 1]!.version;
    }
    return deltas;
  };

  /** CompactStream's transaction, with the state at the horizon already staged. */
  const compactInTransaction = async (tx: SubjectTx, input: CompactInput, staged: StagedState | undefined): Promise<{ result: CompactResult; released: string[] }> => {
    const unchanged = (result: CompactResult) => ({ result, released: [] });
    const q = tx.query;
    const row = await streamRow(q, input.subjectId, input.streamId);
    if (row === undefined) return unchanged({ kind: "stream-not-found" });
    if (input.horizonVersion > row.head_version) return unchanged({ kind: "ahead-of-head", headVersion: row.head_version });
    if (input.horizonVersion <= row.horizon_version) return unchanged({ kind: "unchanged", stream: toStream(row) });
    const key = [input.subjectId, input.streamId] as const;
    let released: string[] = [];
    if (row.encoding === Encoding.Opaque) {
      const snap = await q("SELECT 1 FROM snapshots WHERE subject_id = $1 AND stream_id = $2 AND version = $3", [...key, input.horizonVersion]);
      if (snap.length === 0) return unchanged({ kind: "snapshot-required" });
      await q("DELETE FROM snapshots WHERE subject_id = $1 AND stream_id = $2 AND version < $3", [...key, input.horizonVersion]);
    } else {
      if (staged === undefined) throw new Error("JSON compaction needs the state at the horizon");
      const { replaced } = await jsonStates.publish(q, ...key, input.horizonVersion, staged, true);
      released = [...replaced, ...(await jsonStates.releaseBelow(q, ...key, input.horizonVersion))];
    }
    const horizonHash = await hashAt(q, row, input.horizonVersion);
    // Deleted by the database, not parsed here: one statement holds no loop, however many rows.
    // The chunks of payloads they kept in chunks are let go of with the states after commit.
    const trimmed = await q<{ payload_id: string }>(
      "DELETE FROM deltas WHERE subject_id = $1 AND stream_id = $2 AND version <= $3 RETURNING payload_id",
      [...key, input.horizonVersion],
    );
    released = [...released, ...trimmed.flatMap((t) => (t.payload_id === null ? [] : [t.payload_id]))];
    if (row.encoding !== Encoding.Opaque) await storedStateAt(q, input.subjectId, input.streamId, input.horizonVersion);
    const now = input.now.getTime();
    await q("UPDATE streams SET horizon_version = $1, horizon_hash = $2, updated_at = $3 WHERE subject_id = $4 AND stream_id = $5", [
      input.horizonVersion,
      horizonHash,
      now,
      ...key,
    ]);
    const stream = toStream({ ...row, horizon_version: input.horizonVersion, horizon_hash: horizonHash, updated_at: now });
    tx.log({ kind: "stream-compacted", stream }, input.now);
    return { result: { kind: "compacted", stream }, released };
  };

  /** Inserts delta rows (in {@link DELTA_COLUMNS} order) with one fixed statement: columns travel as arrays. */
  const insertDeltas = async (q: Query, rows: readonly (readonly unknown[])[]): Promise<void> => {
    if (rows.length === 0) return;
    const columns = DELTA_TYPES.map((_, c) => rows.map((r) => r[c]));
    await q(`INSERT INTO deltas (${DELTA_COLUMNS}) SELECT * FROM unnest(${DELTA_TYPES.map((t, i) => `$${i + 1}::${t}[]`).join(", ")})`, columns);
  };

  /** Inserts a new stream row at its head; a JSON stream's state there is kept as its first base. */
  const insertStream = async (q: Query, row: StreamRow, jsonState: Uint8Array | undefined): Promise<void> => {
    await q(`INSERT INTO streams (${STREAM_COLUMNS}, state_version) VALUES ${valuesList(1, 15)}`, [
      row.subject_id,
      row.stream_id,
      row.uid,
      row.type,
      row.encoding,
      row.conflict_policy,
      row.owner_platform,
      row.genesis_hash,
      row.head_version,
      row.head_hash,
      row.horizon_version,
      row.horizon_hash,
      row.created_at,
      row.updated_at,
      row.head_version,
    ]);
    if (jsonState !== undefined) await jsonStates.insertWhole(q, row.subject_id, row.stream_id, row.head_version, jsonState, row.updated_at);
  };

  /**
   * The link of a platform account: the directory names its subject, then the subject's own
   * table has the link (two lookups by key, as the two tables are distributed apart).
   */
  const linkOfAccount = async (q: Query, platformId: string, accountId: string): Promise<LinkRow | undefined> => {
    const entry = (
      await q<{ subject_id: string; link_id: string }>("SELECT subject_id, link_id FROM account_directory WHERE platform_id = $1 AND account_id = $2", [
        platformId,
        escapeText(accountId),
      ])
    )[0];
    if (entry === undefined) return undefined;
    return (await q<LinkRow>("SELECT * FROM account_links WHERE subject_id = $1 AND link_id = $2", [entry.subject_id, entry.link_id]))[0];
  };

  const checkpointEntries = (q: Query, subjectId: string, checkpointId: string): Promise<CheckpointEntryRow[]> =>
    q<CheckpointEntryRow>(
      "SELECT stream_id, stream_uid, stream_type, owner_platform, version, head_hash FROM checkpoint_entries WHERE subject_id = $1 AND checkpoint_id = $2 ORDER BY idx",
      [subjectId, checkpointId],
    );

  const readCheckpoint = async (q: Query, subjectId: string, checkpointId: string): Promise<CheckpointRecord | undefined> => {
    const row = (await q<CheckpointRow>("SELECT * FROM checkpoints WHERE subject_id = $1 AND checkpoint_id = $2", [subjectId, checkpointId]))[0];
    return row === undefined ? undefined : toCheckpoint(row, await checkpointEntries(q, subjectId, checkpointId));
  };

  const handoffRow = async (q: Query, subjectId: string, handoffId: string): Promise<HandoffRow | undefined> =>
    (await q<HandoffRow>("SELECT * FROM handoffs WHERE subject_id = $1 AND handoff_id = $2", [subjectId, handoffId]))[0];

  const expireHandoff = async (tx: SubjectTx, row: HandoffRow, now: Date): Promise<HandoffRecord> => {
    await tx.query("UPDATE handoffs SET state = 'expired', resolved_at = $1 WHERE subject_id = $2 AND handoff_id = $3", [
      now.getTime(),
      row.subject_id,
      row.handoff_id,
    ]);
    const handoff = toHandoff({ ...row, state: "expired", resolved_at: now.getTime() });
    tx.log({ kind: "handoff-resolved", handoff }, now);
    return handoff;
  };

  // --- event log reads ------------------------------------------------------------------

  async function readEvents(subjectId: string, afterSequence: number, limit: number): Promise<SubjectEvent[]> {
    return snapshotRead(async (q) => {
      const rows = await q<{ seq: number; committed_at: number; body: string }>(
        "SELECT seq, committed_at, body FROM subject_events WHERE subject_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        [subjectId, afterSequence, limit],
      );
      const bodies = rows.map((r) => decodeEventBody(r.body));
      // The deltas of every batch on the page, in one query: logged events name them only.
      const batches = bodies.flatMap((b, i) => (b.kind === "deltas-appended" ? [{ i, b }] : []));
      const byEvent = new Map<number, DeltaRecord[]>();
      if (batches.length > 0) {
        const found = await q<DeltaRow & { i: number; s_uid: string; s_encoding: number }>(
          `SELECT r.i, s.uid AS s_uid, s.encoding AS s_encoding, ${DELTA_READ_COLUMNS.split(", ").map((c) => `d.${c}`).join(", ")}
           FROM unnest($2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) AS r(i, stream_id, uid, lo, hi)
           JOIN streams s ON s.subject_id = $1 AND s.stream_id = r.stream_id AND s.uid = r.uid
           JOIN deltas d ON d.subject_id = $1 AND d.stream_id = r.stream_id AND d.version >= r.lo AND d.version <= r.hi
           ORDER BY r.i, d.version`,
          [
            subjectId,
            batches.map((x) => x.i),
            batches.map((x) => (x.b.kind === "deltas-appended" ? x.b.stream.id : "")),
            batches.map((x) => (x.b.kind === "deltas-appended" ? x.b.stream.uid : "")),
            batches.map((x) => (x.b.kind === "deltas-appended" ? x.b.firstVersion : 0)),
            batches.map((x) => (x.b.kind === "deltas-appended" ? x.b.firstVersion + x.b.count - 1 : 0)),
          ],
        );
        const rowsByEvent = new Map<number, DeltaRow[]>();
        for (const d of found) {
          let list = byEvent.get(d.i);
          if (list === undefined) byEvent.set(d.i, (list = []));
          list.push(toDelta(d, { uid: d.s_uid, encoding: d.s_encoding }));
          let rowList = rowsByEvent.get(d.i);
          if (rowList === undefined) rowsByEvent.set(d.i, (rowList = []));
          rowList.push(d);
        }
        // Payloads kept in chunks, a chunk per statement, in this same snapshot.
        for (const [i, rowList] of rowsByEvent) {
          if (rowList.every((d) => d.payload_id === null)) continue;
          byEvent.set(i, (await withPayloads(q, rowList[0]!, byEvent.get(i)!, rowList)) ?? []);
        }
      }
      return rows.map((r, i): SubjectEvent => {
        let body = bodies[i]!;
        if (body.kind === "deltas-appended") {
          const deltas = byEvent.get(i) ?? [];
          // A horizon inside the batch leaves only its tail: the batch is gone as a unit.
          body = { ...body, deltas: deltas.length === body.count ? deltas : [] };
        }
        return { subjectId, sequence: r.seq, committedAt: new Date(r.committed_at), body };
      });
    });
  }

  // --- appends (group commit per subject) ------------------------------------------------

  const appendQueues = new Map<string, PendingAppend[]>();

  const appendOne = async (tx: SubjectTx, input: AppendInput, staged: ReadonlyMap<Uint8Array, StagedState>): Promise<AppendResult> => {
    const q = tx.query;
    // The head, the state at it and the device's client sequence there, in one statement.
    const withSequence = input.clientSequence !== undefined && input.deviceId !== undefined;
    const row = (
      await q<StreamRow & { state_version: number; state_lag_bytes: number; last_sequence: number | null; fingerprint: Buffer | null; outcome: string | null }>(
        `SELECT ${STREAM_COLUMNS.split(", ").map((c) => `s.${c}`).join(", ")}, s.state_version, s.state_lag_bytes, c.client_sequence AS last_sequence, c.fingerprint, c.outcome
         FROM streams s
         LEFT JOIN client_outcomes c ON c.subject_id = s.subject_id AND c.stream_id = s.stream_id AND c.device_id = $3
         WHERE s.subject_id = $1 AND s.stream_id = $2`,
        [input.subjectId, input.streamId, withSequence ? input.deviceId : null],
      )
    )[0];
    if (row === undefined || row.uid !== input.streamUid) return { kind: "stream-not-found" };

    if (withSequence) {
      const clientSequence = input.clientSequence!;
      // Only the latest outcome is kept (APPEND-060): its number is the last acknowledged one.
      const last = row.last_sequence === null ? 0 : Number(row.last_sequence);
      if (clientSequence < last) return { kind: "sequence-expired", clientSequence, expectedSequence: last + 1 };
      if (clientSequence === last) {
        // An empty fingerprint marks an imported outcome (PORT-027): any repeat replays it.
        if (row.fingerprint !== null && row.outcome !== null && (row.fingerprint.length === 0 || Buffer.from(input.fingerprint).equals(row.fingerprint))) {
          return { kind: "replayed", outcome: decodeOutcome(row.outcome) };
        }
        return { kind: "sequence-reused", clientSequence, expectedSequence: last + 1 };
      }
      if (clientSequence > last + 1) return { kind: "sequence-gap", expectedSequence: last + 1 };
    }

    if (input.expectedVersion === undefined && row.conflict_policy === Policy.RequireExpectedVersion && input.enforceConflictPolicy !== false) {
      return { kind: "expected-version-required" };
    }
    if (input.expectedVersion !== undefined && input.expectedVersion !== row.head_version) {
      return { kind: "version-conflict", headVersion: row.head_version, headHash: row.head_hash };
    }

    const stream = toStream(row);
    let built;
    try {
      built = input.build({ stream, stateLag: { version: row.state_version, bytes: row.state_lag_bytes } });
      if (built.deltas.length === 0) throw new Error("a batch needs at least one delta");
    } catch (error) {
      return { kind: "rejected", error };
    }

    const nowMs = input.now.getTime();
    const first = row.head_version + 1;
    const size = built.deltas.length;
    const deltas: DeltaRecord[] = built.deltas.map((delta, i) => ({
      subjectId: row.subject_id,
      streamId: row.stream_id,
      streamUid: row.uid,
      version: first + i,
      encoding: stream.encoding,
      payload: delta.payload,
      prevHash: delta.prevHash,
      hash: delta.hash,
      deviceId: input.deviceId,
      clientSequence: input.clientSequence ?? 0,
      batchFirstVersion: first,
      batchSize: size,
      committedAt: input.now,
    }));
    const last = deltas[deltas.length - 1]!;
    const headVersion = last.version;
    const outcome: AppendOutcome = { receipts: deltas.map((d) => ({ version: d.version, hash: d.hash })), headVersion, headHash: last.hash };
    // A payload written ahead in chunks is named, not sent (store/state-chunks.ts).
    const chunked = built.deltas.map((d) => staged.get(d.payload));
    // The deltas, the new head and the client sequence's outcome, in one statement.
    await q(
      `WITH d AS (
         INSERT INTO deltas (${DELTA_COLUMNS}, payload_id, payload_chunks, payload_bytes)
         SELECT $1, $2, t.version, t.payload, t.prev_hash, t.hash, $6, $7, $8, $9, $10, t.payload_id, t.payload_chunks, t.payload_bytes
         FROM unnest($3::bigint[], $4::bytea[], $5::bytea[], $11::bytea[], $18::text[], $19::integer[], $20::bigint[])
           AS t(version, payload, prev_hash, hash, payload_id, payload_chunks, payload_bytes)
       ), h AS (
         UPDATE streams SET head_version = $12, head_hash = $13, state_lag_bytes = state_lag_bytes + $14, updated_at = $10 WHERE subject_id = $1 AND stream_id = $2
       )
       INSERT INTO client_outcomes (subject_id, stream_id, device_id, client_sequence, fingerprint, outcome)
       SELECT $1, $2, $6, $7, $15, $16 WHERE $6::text IS NOT NULL AND $17::boolean
       ON CONFLICT (subject_id, stream_id, device_id) DO UPDATE SET client_sequence = EXCLUDED.client_sequence, fingerprint = EXCLUDED.fingerprint, outcome = EXCLUDED.outcome`,
      [
        row.subject_id,
        row.stream_id,
        deltas.map((d) => d.version),
        deltas.map((d, i) => (chunked[i] === undefined ? d.payload : EMPTY_PAYLOAD)),
        deltas.map((d) => d.prevHash),
        input.deviceId ?? null,
        input.clientSequence ?? 0,
        first,
        size,
        nowMs,
        deltas.map((d) => d.hash),
        headVersion,
        last.hash,
        // JSON streams store no state here: the service keeps the head in memory and stores a
        // full state by its rule (putJsonState); the row only counts the payload bytes between.
        row.encoding === Encoding.Opaque ? 0 : deltas.reduce((sum, d) => sum + d.payload.length, 0),
        input.fingerprint,
        encodeOutcome(outcome),
        withSequence,
        chunked.map((c) => c?.stateId ?? null),
        chunked.map((c) => c?.chunks ?? 0),
        chunked.map((c) => c?.sizeBytes ?? 0),
      ],
    );
    const ref = { id: row.stream_id, uid: row.uid, type: row.type, ownerPlatformId: row.owner_platform };
    tx.log({ kind: "deltas-appended", stream: ref, firstVersion: first, count: size, deltas }, input.now);
    return { kind: "committed", outcome, deltas };
  };

  /** Commits `group` in one transaction; undefined when a statement failed and nothing was kept. */
  const commitGroup = async (subjectId: string, group: readonly PendingAppend[]): Promise<AppendResult[] | undefined> => {
    try {
      const outcome = await inTransaction(pool, (q) =>
        runSubjectTx(q, subjectId, notify, async (tx) => {
          const results: AppendResult[] = [];
          for (const pending of group) results.push(await appendOne(tx, pending.input, pending.staged));
          return results;
        }),
      );
      options.onGroupCommit?.(group.length);
      emit(subjectId, outcome.events, outcome.notices);
      return outcome.result;
    } catch (error) {
      if (isStatementError(error)) return undefined;
      throw error;
    }
  };

  const drainAppends = async (subjectId: string): Promise<void> => {
    const queue = appendQueues.get(subjectId) ?? [];
    const group = queue.splice(0, MAX_GROUP);
    if (queue.length > 0) void lanes.run(subjectId, () => drainAppends(subjectId));
    else appendQueues.delete(subjectId);
    if (group.length === 0) return;
    try {
      const results = await commitGroup(subjectId, group);
      if (results !== undefined) {
        group.forEach((p, i) => p.resolve(results[i]!));
        return;
      }
      // A statement failed: retry each append alone, so that only the failing one fails.
      for (const pending of group) {
        const alone = await commitGroup(subjectId, [pending]).catch((error: unknown) => {
          pending.reject(error);
          return null;
        });
        if (alone === null) continue;
        pending.resolve(alone?.[0] ?? { kind: "rejected", error: new Error("the append could not be stored") });
      }
    } catch (error) {
      for (const p of group) p.reject(error);
    }
  };

  // --- the store ------------------------------------------------------------------------

  const store: Omit<PostgresStore, keyof PortabilityStore | keyof ReplicaStateStore> = {
    pool,
    schema: location.schema,

    async getEpoch() {
      return epoch;
    },
    async getInstanceSecret() {
      return new Uint8Array(secret);
    },
    onNotification(listenerFn) {
      listeners.add(listenerFn);
      return () => listeners.delete(listenerFn);
    },
    async close() {
      if (closed) return;
      closed = true;
      // Let queued writes finish: their callers are waiting for an answer.
      await Promise.all([...appendQueues.keys()].map((s) => lanes.run(s, async () => undefined)));
      await jsonStates.idle();
      listeners.clear();
      await listener?.close();
      await pool.end();
    },

    // --- subjects and links ---

    async findAccountLink(platformId, accountId) {
      const row = await linkOfAccount(query, platformId, accountId);
      return row === undefined ? undefined : toPgLink(row);
    },

    async createSubjectWithLink(input): Promise<SubjectWithLink> {
      const existing = async (): Promise<SubjectWithLink | undefined> => {
        const link = await store.findAccountLink(input.platformId, input.accountId);
        if (link === undefined) return undefined;
        const subject = await store.getSubject(link.subjectId);
        if (subject === undefined) return undefined;
        return { subject, link, created: false };
      };
      const found = await existing();
      if (found !== undefined) return found;
      const created = await write(input.subjectId, async (tx) => {
        const now = input.now.getTime();
        // The directory row decides a race for the account: the loser links nothing.
        const claimed = await tx.query(
          "INSERT INTO account_directory (platform_id, account_id, subject_id, link_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
          [input.platformId, escapeText(input.accountId), input.subjectId, input.linkId],
        );
        if (claimed.length === 0) return false;
        await tx.query("INSERT INTO subjects (subject_id, created_at, next_ord) VALUES ($1, $2, 1)", [input.subjectId, now]);
        await tx.query("INSERT INTO account_links (subject_id, link_id, platform_id, account_id, created_at, ord) VALUES ($1, $2, $3, $4, $5, 1)", [
          input.subjectId,
          input.linkId,
          input.platformId,
          escapeText(input.accountId),
          now,
        ]);
        return true;
      });
      if (!created) {
        const winner = await existing();
        if (winner === undefined) throw new Error("the account was linked and unlinked meanwhile; try again");
        return winner;
      }
      const link: AccountLinkRecord = {
        subjectId: input.subjectId,
        id: input.linkId,
        platformId: input.platformId,
        accountId: input.accountId,
        createdAt: input.now,
      };
      return { subject: { id: input.subjectId, createdAt: input.now }, link, created: true };
    },

    async getSubject(subjectId) {
      const row = (await query<{ subject_id: string; created_at: number }>("SELECT subject_id, created_at FROM subjects WHERE subject_id = $1", [subjectId]))[0];
      return row === undefined ? undefined : { id: row.subject_id, createdAt: new Date(row.created_at) };
    },

    async hasAccountLink(subjectId, platformId) {
      return (await query("SELECT 1 FROM account_links WHERE subject_id = $1 AND platform_id = $2 LIMIT 1", [subjectId, platformId])).length > 0;
    },

    async getAccountLink(subjectId, linkId) {
      const row = (await query<LinkRow>("SELECT * FROM account_links WHERE subject_id = $1 AND link_id = $2", [subjectId, linkId]))[0];
      return row === undefined ? undefined : toPgLink(row);
    },

    async listAccountLinks(subjectId, page) {
      const rows = await query<LinkRow>("SELECT * FROM account_links WHERE subject_id = $1 AND ord > $2 ORDER BY ord LIMIT $3", [
        subjectId,
        ordAfter(page.after),
        page.limit + 1,
      ]);
      return pageOf(rows, page.limit, (r) => String(r.ord), toPgLink);
    },

    async deleteAccountLink(subjectId, linkId) {
      return write(subjectId, async (tx) => {
        const row = (await tx.query<LinkRow>("SELECT * FROM account_links WHERE subject_id = $1 AND link_id = $2", [subjectId, linkId]))[0];
        if (row === undefined) return "not-found" as const;
        const count = (await tx.query<{ n: number }>("SELECT COUNT(*) AS n FROM account_links WHERE subject_id = $1", [subjectId]))[0]?.n ?? 0;
        if (count <= 1) return "last-link" as const;
        await tx.query("DELETE FROM account_links WHERE subject_id = $1 AND link_id = $2", [subjectId, linkId]);
        await tx.query("DELETE FROM account_directory WHERE platform_id = $1 AND account_id = $2 AND subject_id = $3", [
          row.platform_id,
          row.account_id,
          subjectId,
        ]);
        tx.notice({ kind: "account-link-deleted", subjectId, platformId: row.platform_id });
        return "deleted" as const;
      });
    },

    async createLinkCode(input) {
      await write(input.subjectId, async (tx) => {
        await tx.query("INSERT INTO link_codes (subject_id, code_hash, platform_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)", [
          input.subjectId,
          input.codeHash,
          input.platformId,
          input.now.getTime(),
          input.expiresAt.getTime(),
        ]);
        await tx.query("INSERT INTO link_code_directory (code_hash, subject_id) VALUES ($1, $2)", [input.codeHash, input.subjectId]);
      });
    },

    async redeemLinkCode(input): Promise<RedeemLinkCodeResult> {
      const owner = (await query<{ subject_id: string }>("SELECT subject_id FROM link_code_directory WHERE code_hash = $1", [input.codeHash]))[0];
      if (owner === undefined) return { kind: "invalid" };
      const subjectId = owner.subject_id;
      const result = await write(subjectId, async (tx): Promise<RedeemLinkCodeResult | "raced"> => {
        const code = (
          await tx.query<{ expires_at: number; used_at: number | null }>(
            "SELECT expires_at, used_at FROM link_codes WHERE subject_id = $1 AND code_hash = $2",
            [subjectId, input.codeHash],
          )
        )[0];
        const now = input.now.getTime();
        if (code === undefined || code.expires_at <= now || code.used_at !== null) return { kind: "invalid" };
        const existing = await linkOfAccount(tx.query, input.platformId, input.accountId);
        if (existing !== undefined && existing.subject_id !== subjectId) return { kind: "linked-elsewhere" };
        await tx.query("UPDATE link_codes SET used_at = $1 WHERE subject_id = $2 AND code_hash = $3", [now, subjectId, input.codeHash]);
        if (existing !== undefined) return { kind: "linked", link: toPgLink(existing) };
        const claimed = await tx.query(
          "INSERT INTO account_directory (platform_id, account_id, subject_id, link_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
          [input.platformId, escapeText(input.accountId), subjectId, input.linkId],
        );
        // Linked to another subject by a concurrent sign-in: the code stays unused.
        if (claimed.length === 0) throw new LinkRaced();
        await tx.query("INSERT INTO account_links (subject_id, link_id, platform_id, account_id, created_at, ord) VALUES ($1, $2, $3, $4, $5, $6)", [
          subjectId,
          input.linkId,
          input.platformId,
          escapeText(input.accountId),
          now,
          tx.ord(),
        ]);
        return {
          kind: "linked",
          link: { subjectId, id: input.linkId, platformId: input.platformId, accountId: input.accountId, createdAt: input.now },
        };
      }).catch((error: unknown) => {
        if (error instanceof LinkRaced) return "raced" as const;
        throw error;
      });
      if (result !== "raced") return result;
      const link = await store.findAccountLink(input.platformId, input.accountId);
      return link !== undefined && link.subjectId === subjectId ? { kind: "linked", link } : { kind: "linked-elsewhere" };
    },

    // --- devices ---

    async registerDevice(input): Promise<RegisterDeviceResult> {
      return write(input.subjectId, async (tx): Promise<RegisterDeviceResult> => {
        if (!tx.exists) return { kind: "subject-not-found" };
        const row = (await tx.query<DeviceRow>("SELECT * FROM devices WHERE subject_id = $1 AND device_id = $2", [input.subjectId, input.deviceId]))[0];
        if (row !== undefined) {
          if (row.revoked_at !== null) return { kind: "revoked", device: toPgDevice(row) };
          // Client sequences are per device, so a device id belongs to one platform for good.
          if (row.platform_id !== input.platformId) return { kind: "other-platform", device: toPgDevice(row) };
          const displayName = input.displayName === undefined ? undefined : escapeText(input.displayName);
          if (displayName !== undefined && displayName !== row.display_name) {
            await tx.query("UPDATE devices SET display_name = $1 WHERE subject_id = $2 AND device_id = $3", [displayName, input.subjectId, input.deviceId]);
            return { kind: "updated", device: toPgDevice({ ...row, display_name: displayName }) };
          }
          return { kind: "updated", device: toPgDevice(row) };
        }
        const created: DeviceRow = {
          subject_id: input.subjectId,
          device_id: input.deviceId,
          platform_id: input.platformId,
          display_name: escapeText(input.displayName ?? ""),
          created_at: input.now.getTime(),
          revoked_at: null,
          ord: tx.ord(),
        };
        await tx.query(
          "INSERT INTO devices (subject_id, device_id, platform_id, display_name, created_at, revoked_at, ord) VALUES ($1, $2, $3, $4, $5, $6, $7)",
          [created.subject_id, created.device_id, created.platform_id, created.display_name, created.created_at, created.revoked_at, created.ord],
        );
        return { kind: "registered", device: toPgDevice(created) };
      });
    },

    async getDevice(subjectId, deviceId) {
      const row = (await query<DeviceRow>("SELECT * FROM devices WHERE subject_id = $1 AND device_id = $2", [subjectId, deviceId]))[0];
      return row === undefined ? undefined : toPgDevice(row);
    },

    async listDevices(subjectId, page) {
      const rows = await query<DeviceRow>("SELECT * FROM devices WHERE subject_id = $1 AND ord > $2 ORDER BY ord LIMIT $3", [
        subjectId,
        ordAfter(page.after),
        page.limit + 1,
      ]);
      return pageOf(rows, page.limit, (r) => String(r.ord), toPgDevice);
    },

    async revokeDevice(subjectId, deviceId, now) {
      return write(subjectId, async (tx) => {
        const row = (await tx.query<DeviceRow>("SELECT * FROM devices WHERE subject_id = $1 AND device_id = $2", [subjectId, deviceId]))[0];
        if (row === undefined) return undefined;
        if (row.revoked_at !== null) return toPgDevice(row);
        await tx.query("UPDATE devices SET revoked_at = $1 WHERE subject_id = $2 AND device_id = $3", [now.getTime(), subjectId, deviceId]);
        tx.log({ kind: "device-revoked", deviceId }, now);
        return toPgDevice({ ...row, revoked_at: now.getTime() });
      });
    },

    // --- grants ---

    async createGrant(input) {
      return write(input.subjectId, async (tx) => {
        const row: GrantRow = {
          subject_id: input.subjectId,
          grant_id: input.id,
          grantor_platform: input.grantorPlatformId,
          grantee_platform: input.granteePlatformId,
          stream_type: input.streamType,
          access: input.access,
          created_at: input.now.getTime(),
          revoked_at: null,
          ord: tx.ord(),
        };
        await tx.query(
          "INSERT INTO grants (subject_id, grant_id, grantor_platform, grantee_platform, stream_type, access, created_at, revoked_at, ord) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
          [row.subject_id, row.grant_id, row.grantor_platform, row.grantee_platform, row.stream_type, row.access, row.created_at, row.revoked_at, row.ord],
        );
        return toGrant(row);
      });
    },

    async getGrant(subjectId, grantId) {
      const row = (await query<GrantRow>("SELECT * FROM grants WHERE subject_id = $1 AND grant_id = $2", [subjectId, grantId]))[0];
      return row === undefined ? undefined : toGrant(row);
    },

    async listGrants(subjectId, platformId, page) {
      const rows = await query<GrantRow>(
        "SELECT * FROM grants WHERE subject_id = $1 AND revoked_at IS NULL AND (grantor_platform = $2 OR grantee_platform = $2) AND ord > $3 ORDER BY ord LIMIT $4",
        [subjectId, platformId, ordAfter(page.after), page.limit + 1],
      );
      return pageOf(rows, page.limit, (r) => String(r.ord), toGrant);
    },

    async listActiveGrants(subjectId) {
      return (await query<GrantRow>("SELECT * FROM grants WHERE subject_id = $1 AND revoked_at IS NULL ORDER BY ord", [subjectId])).map(toGrant);
    },

    async revokeGrant(subjectId, grantId, now) {
      return write(subjectId, async (tx) => {
        const row = (await tx.query<GrantRow>("SELECT * FROM grants WHERE subject_id = $1 AND grant_id = $2", [subjectId, grantId]))[0];
        if (row === undefined) return undefined;
        if (row.revoked_at !== null) return toGrant(row);
        await tx.query("UPDATE grants SET revoked_at = $1 WHERE subject_id = $2 AND grant_id = $3", [now.getTime(), subjectId, grantId]);
        const grant = toGrant({ ...row, revoked_at: now.getTime() });
        tx.log({ kind: "grant-revoked", grant }, now);
        return grant;
      });
    },

    async eraseSubject(subjectId) {
      return write(subjectId, async (tx) => {
        if (!tx.exists) return false;
        // The directories are keyed by account and by code, not by subject: their rows go by key.
        const links = await tx.query<{ platform_id: string; account_id: string }>("SELECT platform_id, account_id FROM account_links WHERE subject_id = $1", [subjectId]);
        await tx.query(
          "DELETE FROM account_directory WHERE (platform_id, account_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND subject_id = $3",
          [links.map((l) => l.platform_id), links.map((l) => l.account_id), subjectId],
        );
        const codes = await tx.query<{ code_hash: Buffer }>("SELECT code_hash FROM link_codes WHERE subject_id = $1", [subjectId]);
        await tx.query("DELETE FROM link_code_directory WHERE code_hash = ANY($1::bytea[]) AND subject_id = $2", [codes.map((c) => c.code_hash), subjectId]);
        await tx.query("DELETE FROM subjects WHERE subject_id = $1", [subjectId]);
        tx.notice({ kind: "subject-erased", subjectId });
        return true;
      });
    },

    // --- streams ---

    async createStream(input): Promise<CreateStreamResult> {
      return write(input.subjectId, async (tx): Promise<CreateStreamResult> => {
        if (!tx.exists) return { kind: "subject-not-found" };
        if ((await streamRow(tx.query, input.subjectId, input.id)) !== undefined) return { kind: "already-exists" };
        const count = (await tx.query<{ n: number }>("SELECT COUNT(*) AS n FROM streams WHERE subject_id = $1", [input.subjectId]))[0]?.n ?? 0;
        if (count >= input.maxStreamsPerSubject) return { kind: "limit-reached" };
        const now = input.now.getTime();
        const genesis = Buffer.from(input.genesisHash);
        const row: StreamRow = {
          subject_id: input.subjectId,
          stream_id: input.id,
          uid: input.uid,
          type: input.type,
          encoding: input.encoding,
          conflict_policy: input.conflictPolicy,
          owner_platform: input.ownerPlatformId,
          genesis_hash: genesis,
          head_version: 0,
          head_hash: genesis,
          horizon_version: 0,
          horizon_hash: genesis,
          created_at: now,
          updated_at: now,
        };
        await insertStream(tx.query, row, input.initialState);
        const stream = toStream(row);
        tx.log({ kind: "stream-created", stream }, input.now);
        return { kind: "created", stream };
      });
    },

    async getStream(subjectId, streamId) {
      const row = await streamRow(query, subjectId, streamId);
      return row === undefined ? undefined : toStream(row);
    },

    async listStreams(subjectId, listOptions, page) {
      // A platform id that cannot be stored (U+0000, as the services use to mean "no platform") matches nothing.
      const params: unknown[] = [subjectId, page.after ?? ""];
      const param = (value: string): string => {
        params.push(value);
        return `$${params.length}`;
      };
      const { platformId, shared } = listOptions.visibility;
      const parts = [comparable(platformId) ? `owner_platform = ${param(platformId)}` : "FALSE"];
      for (const share of shared) {
        if (!comparable(share.ownerPlatformId) || !comparable(share.streamType)) continue;
        parts.push(
          share.streamType === "*"
            ? `owner_platform = ${param(share.ownerPlatformId)}`
            : `(owner_platform = ${param(share.ownerPlatformId)} AND type = ${param(share.streamType)})`,
        );
      }
      let typeClause = "";
      if (listOptions.type !== undefined) {
        params.push(listOptions.type);
        typeClause = ` AND type = $${params.length}`;
      }
      params.push(page.limit + 1);
      const rows = await query<StreamRow>(
        `SELECT ${STREAM_COLUMNS} FROM streams WHERE subject_id = $1 AND stream_id > $2 AND (${parts.join(" OR ")})${typeClause} ORDER BY stream_id LIMIT $${params.length}`,
        params,
      );
      return pageOf(rows, page.limit, (r) => r.stream_id, toStream);
    },

    async deleteStream(subjectId, streamId, now) {
      return write(subjectId, async (tx) => {
        const row = await streamRow(tx.query, subjectId, streamId);
        if (row === undefined) return undefined;
        await tx.query("DELETE FROM streams WHERE subject_id = $1 AND stream_id = $2", [subjectId, streamId]);
        tx.log({ kind: "stream-deleted", stream: { id: row.stream_id, uid: row.uid, type: row.type, ownerPlatformId: row.owner_platform } }, now);
        return toStream(row);
      });
    },

    // --- deltas ---

    appendBatch(input) {
      const queued = (staged: ReadonlyMap<Uint8Array, StagedState>): Promise<AppendResult> =>
        new Promise<AppendResult>((resolve, reject) => {
          if (closed) {
            reject(new Error("store is closed"));
            return;
          }
          let queue = appendQueues.get(input.subjectId);
          if (queue === undefined) {
            queue = [];
            appendQueues.set(input.subjectId, queue);
            void lanes.run(input.subjectId, () => drainAppends(input.subjectId));
          }
          queue.push({ input, staged, resolve, reject });
        });
      return appendWithStagedPayloads(input.subjectId, input.streamId, input.expectedPayloads, jsonStates, () => closed, queued);
    },

    async listDeltas(subjectId, streamId, afterVersion, limit) {
      return snapshotRead(async (q) => {
        const row = await streamRow(q, subjectId, streamId);
        if (row === undefined) return [];
        const deltas = await deltasBetween(q, row, afterVersion, Number.MAX_SAFE_INTEGER, limit);
        // Stryker disable next-line StringLiteral: unreachable: one snapshot sees a delta row and the chunks it names together
        if (deltas === undefined) throw new Error("a retained delta's payload is missing");
        return deltas;
      });
    },

    async hashAtVersion(subjectId, streamId, version) {
      return snapshotRead(async (q) => {
        const row = await streamRow(q, subjectId, streamId);
        if (row === undefined) return MISSING_STREAM;
        return checkVersion(row, version) ?? (await hashAt(q, row, version));
      });
    },

    async loadStateBase(subjectId, streamId, version): Promise<StateBase | VersionCheck> {
      // The row, the state's chunks and the deltas each a short statement apart: a compaction
      // may let go of the base meanwhile, which the reads see (a chunk or delta gone) and retry.
      for (let attempt = 1; attempt <= STATE_READ_ATTEMPTS; attempt++) {
        const head = await snapshotRead(async (q) => {
          const row = await streamRow(q, subjectId, streamId);
          if (row === undefined) return MISSING_STREAM;
          const bad = checkVersion(row, version);
          if (bad !== undefined) return bad;
          const ref = await jsonStates.newestAtOrBelow(q, subjectId, streamId, version);
          if (ref === undefined) throw new Error("no stored state at or below the horizon");
          return { row, ref };
        });
        if (!("ref" in head)) return head;
        const { row, ref } = head;
        const baseState = await jsonStates.read(subjectId, streamId, ref);
        const deltas = baseState === undefined ? undefined : await deltasInPages(row, ref.version, version);
        if (baseState !== undefined && deltas !== undefined) return { stream: toStream(row), baseVersion: ref.version, baseState, deltas };
      }
      throw new StateReadRaced();
    },

    async putJsonState(input: PutJsonStateInput): Promise<boolean> {
      const usable = (row: StreamRow | undefined): boolean =>
        row !== undefined && row.uid === input.streamUid && row.encoding !== Encoding.Opaque && checkVersion(row, input.version) === undefined;
      if (!usable(await streamRow(query, input.subjectId, input.streamId))) return false;
      const staged = await jsonStates.stage(input.subjectId, input.streamId, input.state, Date.now());
      let published = false;
      try {
        return await write(input.subjectId, async (tx): Promise<boolean> => {
          if (!usable(await streamRow(tx.query, input.subjectId, input.streamId))) return false;
          published = (await jsonStates.publish(tx.query, input.subjectId, input.streamId, input.version, staged, false)).published;
          await storedStateAt(tx.query, input.subjectId, input.streamId, input.version);
          return true;
        });
      } catch (error) {
        published = false;
        throw error;
      } finally {
        if (!published) jsonStates.drop(input.subjectId, input.streamId, [staged.stateId]);
      }
    },

    // --- snapshots and compaction ---

    async putSnapshot(input): Promise<PutSnapshotResult> {
      return write(input.subjectId, async (tx): Promise<PutSnapshotResult> => {
        const row = await streamRow(tx.query, input.subjectId, input.streamId);
        if (row === undefined) return MISSING_STREAM;
        if (row.encoding !== Encoding.Opaque) return { kind: "not-opaque", encoding: row.encoding as 1 | 2 };
        const bad = checkVersion(row, input.version);
        if (bad !== undefined) return bad;
        const headHash = await hashAt(tx.query, row, input.version);
        const stream = toStream(row);
        if (!input.verify(stream, headHash)) return { kind: "mismatch" };
        const key = [input.subjectId, input.streamId, input.version] as const;
        await tx.query("DELETE FROM snapshots WHERE subject_id = $1 AND stream_id = $2 AND version = $3", key);
        await tx.query(
          "INSERT INTO snapshots (subject_id, stream_id, version, head_hash, size_bytes, snapshot_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
          [...key, headHash, input.sizeBytes, input.snapshotHash, input.now.getTime()],
        );
        for (const [idx, chunk] of input.chunks.entries()) {
          await tx.query("INSERT INTO snapshot_chunks (subject_id, stream_id, version, idx, data) VALUES ($1, $2, $3, $4, $5)", [...key, idx, chunk]);
        }
        const snapshot: SnapshotRecord = {
          subjectId: input.subjectId,
          streamId: input.streamId,
          version: input.version,
          headHash,
          sizeBytes: input.sizeBytes,
          snapshotHash: input.snapshotHash,
          createdAt: input.now,
        };
        return { kind: "stored", snapshot, stream };
      });
    },

    async findSnapshot(subjectId, streamId, atOrBelow) {
      const row = (
        await query<SnapshotRow>(
          "SELECT * FROM snapshots WHERE subject_id = $1 AND stream_id = $2 AND version <= $3 ORDER BY version DESC LIMIT 1",
          [subjectId, streamId, atOrBelow],
        )
      )[0];
      return row === undefined ? undefined : toSnapshot(row);
    },

    async *readSnapshotChunks(subjectId, streamId, version) {
      // One query per chunk: a cursor would hold a pooled connection across the caller's awaits.
      for (let idx = 0; ; idx++) {
        if (closed) return;
        const row = (
          await query<{ data: Buffer }>("SELECT data FROM snapshot_chunks WHERE subject_id = $1 AND stream_id = $2 AND version = $3 AND idx = $4", [
            subjectId,
            streamId,
            version,
            idx,
          ])
        )[0];
        if (row === undefined) return;
        yield row.data;
      }
    },

    async listRetentionCandidates(retain, limit) {
      // A sweep across subjects, read-only: each candidate is then compacted in its own subject's transaction.
      const rows = await query<StreamRow>(
        `SELECT ${STREAM_COLUMNS} FROM streams WHERE head_version - horizon_version > $1 ORDER BY head_version - horizon_version DESC LIMIT $2`,
        [retain, limit],
      );
      return rows.map(toStream);
    },

    async compactStream(input): Promise<CompactResult> {
      // The state at the horizon is written (in chunks) before the transaction that names it.
      let staged: StagedState | undefined;
      if (input.stateAtHorizon !== undefined) {
        const before = await streamRow(query, input.subjectId, input.streamId);
        if (before === undefined) return { kind: "stream-not-found" };
        if (before.encoding !== Encoding.Opaque && input.horizonVersion > before.horizon_version && input.horizonVersion <= before.head_version) {
          try {
            staged = await jsonStates.stage(input.subjectId, input.streamId, input.stateAtHorizon, input.now.getTime());
          } catch (error) {
            if ((await streamRow(query, input.subjectId, input.streamId)) === undefined) return { kind: "stream-not-found" };
            throw error;
          }
        }
      }
      let released: string[] | undefined;
      try {
        return await write(input.subjectId, async (tx): Promise<CompactResult> => {
          released = undefined;
          const result = await compactInTransaction(tx, input, staged);
          if (result.result.kind === "compacted") released = result.released;
          return result.result;
        });
      } catch (error) {
        released = undefined;
        throw error;
      } finally {
        if (released !== undefined) jsonStates.drop(input.subjectId, input.streamId, released);
        else if (staged !== undefined) jsonStates.drop(input.subjectId, input.streamId, [staged.stateId]);
      }
    },

    // --- checkpoints ---


    async createCheckpoint(input): Promise<CreateCheckpointResult> {
      return write(input.subjectId, async (tx): Promise<CreateCheckpointResult> => {
        const q = tx.query;
        if ((await q("SELECT 1 FROM checkpoints WHERE subject_id = $1 AND checkpoint_id = $2", [input.subjectId, input.id])).length > 0) {
          return { kind: "already-exists" };
        }
        const entries: CheckpointEntryRecord[] = [];
        for (const [index, selector] of input.selectors.entries()) {
          const row = await streamRow(q, input.subjectId, selector.streamId);
          if (row === undefined || !input.canRead(toStream(row))) return { kind: "stream-not-found", index };
          const version = selector.version ?? row.head_version;
          const bad = checkVersion(row, version);
          if (bad?.kind === "ahead-of-head") return { kind: "ahead-of-head", index, headVersion: bad.headVersion };
          if (bad?.kind === "below-horizon") return { kind: "below-horizon", index, horizonVersion: bad.horizonVersion };
          entries.push({
            streamId: row.stream_id,
            streamUid: row.uid,
            streamType: row.type,
            ownerPlatformId: row.owner_platform,
            version,
            headHash: await hashAt(q, row, version),
          });
        }
        entries.sort((a, b) => Buffer.compare(Buffer.from(a.streamUid, "utf8"), Buffer.from(b.streamUid, "utf8")));
        const digest = input.digest(entries);
        await q(
          "INSERT INTO checkpoints (subject_id, checkpoint_id, resume, digest, device_id, platform_id, created_at, ord) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
          [input.subjectId, input.id, JSON.stringify(input.resume), digest, input.deviceId ?? null, input.platformId, input.now.getTime(), tx.ord()],
        );
        if (entries.length > 0) {
          await q(
            `INSERT INTO checkpoint_entries (subject_id, checkpoint_id, idx, stream_id, stream_uid, stream_type, owner_platform, version, head_hash) VALUES ${valuesList(entries.length, 9)}`,
            entries.flatMap((e, idx) => [input.subjectId, input.id, idx, e.streamId, e.streamUid, e.streamType, e.ownerPlatformId, e.version, e.headHash]),
          );
        }
        const checkpoint: CheckpointRecord = {
          subjectId: input.subjectId,
          id: input.id,
          entries,
          resume: input.resume,
          digest,
          deviceId: input.deviceId,
          platformId: input.platformId,
          createdAt: input.now,
        };
        return { kind: "created", checkpoint };
      });
    },

    async getCheckpoint(subjectId, checkpointId) {
      return snapshotRead((q) => readCheckpoint(q, subjectId, checkpointId));
    },

    async listCheckpoints(subjectId, page) {
      const after = page.after === undefined ? Number.MAX_SAFE_INTEGER : Number(page.after);
      return snapshotRead(async (q) => {
        const rows = await q<CheckpointRow>("SELECT * FROM checkpoints WHERE subject_id = $1 AND ord < $2 ORDER BY ord DESC LIMIT $3", [
          subjectId,
          Number.isSafeInteger(after) ? after : 0,
          page.limit + 1,
        ]);
        const more = rows.length > page.limit;
        const kept = more ? rows.slice(0, page.limit) : rows;
        const items: CheckpointRecord[] = [];
        for (const r of kept) items.push(toCheckpoint(r, await checkpointEntries(q, r.subject_id, r.checkpoint_id)));
        const last = kept[kept.length - 1];
        return { items, nextAfter: more && last !== undefined ? String(last.ord) : undefined };
      });
    },

    async deleteCheckpoint(subjectId, checkpointId, now) {
      return write(subjectId, async (tx) => {
        const deleted = await tx.query("DELETE FROM checkpoints WHERE subject_id = $1 AND checkpoint_id = $2 RETURNING 1", [subjectId, checkpointId]);
        if (deleted.length === 0) return false;
        const pending = await tx.query<HandoffRow>("SELECT * FROM handoffs WHERE subject_id = $1 AND checkpoint_id = $2 AND state = 'offered'", [
          subjectId,
          checkpointId,
        ]);
        for (const row of pending) await expireHandoff(tx, row, now);
        return true;
      });
    },

    // --- handoffs ---

    async createHandoff(input): Promise<CreateHandoffResult> {
      return write(input.subjectId, async (tx): Promise<CreateHandoffResult> => {
        const checkpoint = await readCheckpoint(tx.query, input.subjectId, input.checkpointId);
        if (checkpoint === undefined) return { kind: "checkpoint-not-found" };
        if (input.targetDeviceId !== undefined) {
          const target = (
            await tx.query<{ revoked_at: number | null }>("SELECT revoked_at FROM devices WHERE subject_id = $1 AND device_id = $2", [
              input.subjectId,
              input.targetDeviceId,
            ])
          )[0];
          if (target === undefined || target.revoked_at !== null) return { kind: "target-not-found" };
        }
        const row: HandoffRow = {
          subject_id: input.subjectId,
          handoff_id: input.id,
          checkpoint_id: input.checkpointId,
          source_device: input.sourceDeviceId,
          target_device: input.targetDeviceId ?? null,
          state: "offered",
          resolved_by: null,
          created_at: input.now.getTime(),
          expires_at: input.expiresAt.getTime(),
          resolved_at: null,
          checkpoint_streams: encodeCheckpointStreams(checkpoint.entries),
        };
        await tx.query(
          "INSERT INTO handoffs (subject_id, handoff_id, checkpoint_id, source_device, target_device, state, resolved_by, created_at, expires_at, resolved_at, checkpoint_streams) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
          [
            row.subject_id,
            row.handoff_id,
            row.checkpoint_id,
            row.source_device,
            row.target_device,
            row.state,
            row.resolved_by,
            row.created_at,
            row.expires_at,
            row.resolved_at,
            row.checkpoint_streams,
          ],
        );
        const handoff = toHandoff(row);
        tx.log({ kind: "handoff-offered", handoff, checkpoint }, input.now);
        return { kind: "created", handoff, checkpoint };
      });
    },

    async getHandoff(subjectId, handoffId, now) {
      const row = await handoffRow(query, subjectId, handoffId);
      if (row === undefined) return undefined;
      if (!(row.state === "offered" && row.expires_at <= now.getTime())) return toHandoff(row);
      // Its time has passed: expire it (logged) under the subject's lock, unless someone resolved it first.
      return write(subjectId, async (tx) => {
        const current = await handoffRow(tx.query, subjectId, handoffId);
        if (current === undefined) return undefined;
        if (current.state === "offered" && current.expires_at <= now.getTime()) return expireHandoff(tx, current, now);
        return toHandoff(current);
      });
    },

    async resolveHandoff(input): Promise<ResolveHandoffResult> {
      return write(input.subjectId, async (tx): Promise<ResolveHandoffResult> => {
        const row = await handoffRow(tx.query, input.subjectId, input.handoffId);
        if (row === undefined) return { kind: "not-found" };
        if (row.state === "offered" && row.expires_at <= input.now.getTime()) {
          return { kind: "already-resolved", handoff: await expireHandoff(tx, row, input.now) };
        }
        if (row.state !== "offered") {
          // The device that resolved it, asking again for the same outcome, gets that outcome
          // back unchanged (HANDOFF-008): its first response may have been lost.
          if (row.resolved_by === input.deviceId && row.state === input.resolution) {
            const checkpoint = input.resolution === "accepted" ? await readCheckpoint(tx.query, input.subjectId, row.checkpoint_id) : undefined;
            return { kind: "resolved", handoff: toHandoff(row), checkpoint };
          }
          return { kind: "already-resolved", handoff: toHandoff(row) };
        }
        if (row.source_device === input.deviceId) return { kind: "not-eligible" };
        if (row.target_device !== null && row.target_device !== input.deviceId) return { kind: "not-eligible" };
        const resolved: HandoffRow = { ...row, state: input.resolution, resolved_by: input.deviceId, resolved_at: input.now.getTime() };
        await tx.query("UPDATE handoffs SET state = $1, resolved_by = $2, resolved_at = $3 WHERE subject_id = $4 AND handoff_id = $5", [
          resolved.state,
          resolved.resolved_by,
          resolved.resolved_at,
          input.subjectId,
          input.handoffId,
        ]);
        const handoff = toHandoff(resolved);
        tx.log({ kind: "handoff-resolved", handoff }, input.now);
        const checkpoint = input.resolution === "accepted" ? await readCheckpoint(tx.query, input.subjectId, row.checkpoint_id) : undefined;
        return { kind: "resolved", handoff, checkpoint };
      });
    },

    async expireHandoffs(now) {
      // A sweep across subjects finds the candidates; each subject expires its own, under its lock.
      const due = await query<{ subject_id: string; handoff_id: string }>(
        "SELECT subject_id, handoff_id FROM handoffs WHERE state = 'offered' AND expires_at <= $1 ORDER BY subject_id LIMIT 1000",
        [now.getTime()],
      );
      let expired = 0;
      for (const subjectId of new Set(due.map((d) => d.subject_id))) {
        expired += await write(subjectId, async (tx) => {
          const rows = await tx.query<HandoffRow>("SELECT * FROM handoffs WHERE subject_id = $1 AND state = 'offered' AND expires_at <= $2", [
            subjectId,
            now.getTime(),
          ]);
          for (const row of rows) await expireHandoff(tx, row, now);
          return rows.length;
        });
      }
      return expired;
    },

    // --- event log ---

    async getEventBounds(subjectId): Promise<EventBounds> {
      const row = (await query<{ event_seq: number; event_horizon: number }>("SELECT event_seq, event_horizon FROM subjects WHERE subject_id = $1", [subjectId]))[0];
      return row === undefined ? { horizon: 0, head: 0 } : { horizon: row.event_horizon, head: row.event_seq };
    },

    readEvents,

    async findCompactedBatches(subjectId, afterSequence) {
      const rows = await query<{ stream_id: string; uid: string; type: string; owner_platform: string; horizon_version: number }>(
        `SELECT DISTINCT s.stream_id, s.uid, s.type, s.owner_platform, s.horizon_version
         FROM subject_events e
         JOIN streams s ON s.subject_id = e.subject_id AND s.stream_id = e.batch_stream AND s.uid = e.batch_uid
         WHERE e.subject_id = $1 AND e.seq > $2 AND e.batch_first <= s.horizon_version`,
        [subjectId, afterSequence],
      );
      return rows.map((r) => ({
        stream: { id: r.stream_id, uid: r.uid, type: r.type, ownerPlatformId: r.owner_platform },
        horizonVersion: r.horizon_version,
      }));
    },

    async pruneEvents(keep) {
      const subjects = await query<{ subject_id: string }>("SELECT subject_id FROM subjects WHERE event_seq - event_horizon > $1 LIMIT 1000", [keep]);
      let removed = 0;
      for (const { subject_id } of subjects) {
        removed += await write(subject_id, async (tx) => {
          const bounds = (await tx.query<{ event_seq: number }>("SELECT event_seq FROM subjects WHERE subject_id = $1", [subject_id]))[0];
          if (bounds === undefined) return 0;
          const horizon = bounds.event_seq - keep;
          const deleted = await tx.query("DELETE FROM subject_events WHERE subject_id = $1 AND seq <= $2 RETURNING 1", [subject_id, horizon]);
          await tx.query("UPDATE subjects SET event_horizon = GREATEST(event_horizon, $1) WHERE subject_id = $2", [horizon, subject_id]);
          return deleted.length;
        });
      }
      return removed;
    },
  };

  return Object.assign(
    store,
    createPgReplicaState({ query, write }),
    createPgPortability({
      query,
      write,
      snapshotRead,
      streamRow,
      stateLag,
      addStateLag,
      insertStream,
      insertDeltas,
      checkpointEntries,
      eraseSubject: (subjectId) => store.eraseSubject(subjectId),
      streamColumns: STREAM_COLUMNS,
      deltaColumns: DELTA_READ_COLUMNS,
      withPayloads,
    }),
  );
}

/** Thrown inside a redemption whose account was claimed meanwhile, to roll it back. */
class LinkRaced extends Error {}

function ordAfter(after: string | undefined): number {
  if (after === undefined) return 0;
  const n = Number(after);
  return Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER;
}

function pageOf<R, T>(rows: R[], limit: number, keyOf: (row: R) => string, map: (row: R) => T): { items: T[]; nextAfter: string | undefined } {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  const last = kept[kept.length - 1];
  return { items: kept.map(map), nextAfter: more && last !== undefined ? keyOf(last) : undefined };
}

