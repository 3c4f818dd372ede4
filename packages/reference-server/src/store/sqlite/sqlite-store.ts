import { randomBytes, randomUUID } from "node:crypto";
import { chmodSync, closeSync, openSync } from "node:fs";
import BetterSqlite3 from "better-sqlite3";
import type { Database, Statement } from "better-sqlite3";
import type {
  AccountLinkRecord,
  AppendInput,
  AppendOutcome,
  AppendResult,
  CheckpointEntryRecord,
  CheckpointRecord,
  CompactInput,
  CompactResult,
  CreateCheckpointInput,
  CreateCheckpointResult,
  CreateGrantInput,
  CreateHandoffInput,
  CreateHandoffResult,
  CreateStreamInput,
  CreateStreamResult,
  CreateSubjectInput,
  DeltaRecord,
  DeviceRecord,
  Durability,
  EventBounds,
  GrantRecord,
  HandoffRecord,
  Page,
  PageRequest,
  PutJsonStateInput,
  PutSnapshotInput,
  PutSnapshotResult,
  RedeemLinkCodeInput,
  RedeemLinkCodeResult,
  RegisterDeviceInput,
  RegisterDeviceResult,
  ResolveHandoffInput,
  ResolveHandoffResult,
  SnapshotRecord,
  StateBase,
  StateLag,
  Store,
  StoreNotification,
  StreamVisibility,
  SubjectEvent,
  SubjectEventBody,
  SubjectRecord,
  SubjectWithLink,
  VersionCheck,
} from "../types.js";
import { Encoding, Policy } from "../types.js";
import {
  decodeCheckpointStreams,
  decodeEventBody,
  decodeOutcome,
  encodeCheckpointStreams,
  encodeEventBody,
  encodeOutcome,
  storedPrevHash,
  toCheckpoint,
  toDelta,
  toDevice,
  toGrant,
  toHandoff,
  toLink,
  toSnapshot,
  toStream,
} from "../codec.js";
import type {
  CheckpointEntryRow,
  CheckpointRow,
  DeltaRow,
  DeviceRow,
  GrantRow,
  HandoffRow,
  LinkRow,
  SnapshotRow,
  StreamRow,
} from "../codec.js";
import { createSqliteErasure } from "./erasure.js";
import { createSqliteJsonStates } from "./json-states.js";
import { migrate, SELECT_DELTAS, STREAM_KEY, SUBJECT_KEY } from "./migrations.js";
import { createSqlitePortability } from "./portability.js";
import { createSqliteReplicaState } from "./replica-state.js";
import type { PortabilityStore } from "../portability-types.js";
import { SubjectHeldError, type ReplicaStateStore } from "../replica-state-types.js";
import {
  appendWithStagedPayloads,
  DELTAS_PER_READ,
  payloadChunksRef,
  STATE_READ_ATTEMPTS,
  StateReadRaced,
  withChunkedPayloads,
  yieldTurn,
  type PayloadStager,
  type StagedState,
} from "../state-chunks.js";

/** Options of {@link createSqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file, or `:memory:` for tests that need no durability. */
  readonly path: string;
  /** `full` fsyncs every commit; `normal` (default) survives a crash of the process. */
  readonly durability?: Durability;
  /** Told the size of every committed append group (metrics, tests). */
  readonly onGroupCommit?: (appends: number) => void;
  /** Called when a listener throws, so that a broken listener is visible but harmless. */
  readonly onListenerError?: (error: unknown) => void;
  /**
   * Told when an erasure returns while another connection still pins the WAL: the erased
   * pages stay in `<path>-wal` until that reader ends, and the store retries until then.
   */
  readonly onPendingScrub?: (subjectId: string) => void;
}

/** The `meta` key that records a WAL scrub an erasure still needs (ERASE-004). */
const WAL_SCRUB_KEY = "wal_scrub_pending";
/** How long DeleteSubject waits, without blocking, for a reader to leave the WAL. */
const ERASE_SCRUB_WAIT_MS = 1000;
const WAL_SCRUB_POLL_MS = 25;
/** Then the store retries this often until the scrub is done. */
const WAL_SCRUB_RETRY_MS = 500;
const BUSY_TIMEOUT_MS = 5000;
/** Most auth facts (links, devices, grant lists) remembered between writes. */
const AUTH_FACTS_LIMIT = 10_000;

/** A {@link Store} on SQLite, with helpers tests use to look inside. */
export interface SqliteStore extends Store {
  /** The underlying connection, for tests and diagnostics only. */
  readonly db: Database;
}

interface PendingAppend {
  readonly input: AppendInput;
  /** Payloads of `input.expectedPayloads` written ahead in chunks, by the payload they hold. */
  readonly staged: ReadonlyMap<Uint8Array, StagedState>;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: unknown) => void;
}

/** Events written by one transaction, emitted only after it commits. */
type EventSink = SubjectEvent[];

const MISSING_STREAM: VersionCheck = { kind: "stream-not-found" };
/** The `payload` of a delta row whose payload is kept in chunks. */
const EMPTY_PAYLOAD = Buffer.alloc(0);

/**
 * The database and its `-wal`, `-shm` and `-journal` companions hold people's state, so they
 * are readable by this user only, whatever the umask. SQLite gives the companions the
 * database file's mode, so creating that file 0600 before SQLite does covers them; files left
 * by an earlier start under a laxer regime are tightened too.
 */
function makeDatabaseFilesPrivate(path: string): void {
  if (path === "" || path === ":memory:" || path.startsWith("file:")) return;
  closeSync(openSync(path, "a", 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    try {
      chmodSync(file, 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
}

/**
 * Opens (creating and migrating as needed) a SQLite store.
 *
 * Appends are group-committed: calls that arrive before the next turn of the event loop
 * share one transaction, each inside its own savepoint, so one fsync covers many writers
 * while a failing append rolls back alone. Every other intent is its own transaction.
 */
export function createSqliteStore(options: SqliteStoreOptions): SqliteStore {
  makeDatabaseFilesPrivate(options.path);
  const db = new BetterSqlite3(options.path);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${options.durability === "full" ? "FULL" : "NORMAL"}`);
  db.pragma("foreign_keys = ON");
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // Erasure must not leave a person's data readable in free pages: deleted content is
  // overwritten with zeros (and eraseSubject truncates the WAL, which holds old page images).
  db.pragma("secure_delete = ON");
  migrate(db);

  const listeners = new Set<(n: StoreNotification) => void>();
  const statements = new Map<string, Statement>();
  const stmt = (sql: string): Statement => {
    let s = statements.get(sql);
    if (s === undefined) {
      s = db.prepare(sql);
      statements.set(sql, s);
    }
    return s;
  };

  const meta = (key: string, make: () => Buffer): Buffer => {
    const row = stmt("SELECT value FROM meta WHERE key = ?").get(key) as { value: Buffer } | undefined;
    if (row !== undefined) return row.value;
    const value = make();
    stmt("INSERT INTO meta (key, value) VALUES (?, ?)").run(key, value);
    return value;
  };
  const epoch = meta("epoch", () => Buffer.from(randomUUID().replaceAll("-", ""), "utf8")).toString("utf8");
  const secret = meta("instance_secret", () => randomBytes(32));

  let closed = false;
  const jsonStates = createSqliteJsonStates(stmt, () => closed, (error) => options.onListenerError?.(error));
  // Chunks of state writes a crash cut short; one file is served by one server, so every
  // chunk no row names that is older than this open is such a leftover.
  jsonStates.sweepOrphans(Date.now());

  // --- erasure scrub ----------------------------------------------------------------------
  // An erased subject's pages stay in the WAL until a TRUNCATE checkpoint empties it, and a
  // checkpoint cannot do so while another connection (a backup tool) holds a read transaction
  // that pins the WAL. The erasing transaction records the obligation in `meta`, so that it
  // survives a restart; it is cleared only once a checkpoint has emptied the WAL.
  const tryScrubWal = (): boolean => {
    if (closed) return false;
    if (stmt("SELECT 1 FROM meta WHERE key = ?").get(WAL_SCRUB_KEY) === undefined) return true;
    // Never wait inside SQLite: a busy handler would block the event loop for every caller.
    db.pragma("busy_timeout = 0");
    let result: { busy: number; log: number } | undefined;
    try {
      result = (db.pragma("wal_checkpoint(TRUNCATE)") as { busy: number; log: number }[])[0];
    } finally {
      db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
    // `log` is -1 when the database is not in WAL mode (`:memory:`): nothing to scrub.
    if (result === undefined || result.busy !== 0 || result.log > 0) return false;
    // Written to the fresh, empty WAL: it holds nothing of the erased subject.
    stmt("DELETE FROM meta WHERE key = ?").run(WAL_SCRUB_KEY);
    return true;
  };
  let scrubTimer: NodeJS.Timeout | undefined;
  const scheduleScrub = (): void => {
    if (scrubTimer !== undefined || closed) return;
    scrubTimer = setTimeout(() => {
      scrubTimer = undefined;
      if (!tryScrubWal()) scheduleScrub();
    }, WAL_SCRUB_RETRY_MS);
    scrubTimer.unref();
  };
  /** Scrubs the WAL, waiting (without blocking) at most `waitMs`; true when it is done. */
  const scrubWal = async (waitMs: number): Promise<boolean> => {
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (tryScrubWal()) return true;
      if (closed || Date.now() >= deadline) break;
      await new Promise((resolve) => setTimeout(resolve, WAL_SCRUB_POLL_MS));
    }
    scheduleScrub();
    return false;
  };
  // A scrub left pending by an earlier run (a reader pinned the WAL, then the server stopped).
  if (!tryScrubWal()) scheduleScrub();

  // --- erasure in steps ----------------------------------------------------------------
  const erasure = createSqliteErasure(db, stmt, (fn, withoutForeignKeys) => write(fn, withoutForeignKeys), () => closed);
  /** Deletes an erased subject's remaining rows; once they are gone, the WAL scrub is due. */
  const removeErasedRows = async (subjectId: string): Promise<boolean> => {
    if (!(await erasure.removeRows(subjectId))) return false;
    stmt("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(WAL_SCRUB_KEY, Buffer.from("1"));
    return true;
  };

  // --- notification plumbing ------------------------------------------------------------

  const notify = (notification: StoreNotification): void => {
    for (const listener of listeners) {
      try {
        listener(notification);
      } catch (error) {
        options.onListenerError?.(error);
      }
    }
  };

  const emit = (events: EventSink): void => {
    // Group consecutive events per subject, keeping commit order.
    let i = 0;
    while (i < events.length) {
      const subjectId = events[i]!.subjectId;
      let j = i;
      while (j < events.length && events[j]!.subjectId === subjectId) j++;
      notify({ kind: "events", subjectId, events: events.slice(i, j) });
      i = j;
    }
  };

  // --- auth facts ---------------------------------------------------------------------
  // Every authenticated call re-reads its account link, its device and the subject's active
  // grants (AUTH-004, ISO-011). They change only through `write` — appends never touch
  // them — so they are remembered here and forgotten, all of them, whenever any `write`
  // transaction runs, before it runs. A call that starts after a revocation's transaction
  // (or an erasure, an unlink, an import) can therefore never see what it removed.
  // Only what exists is remembered: a miss is read again. Bounded: past the limit the
  // whole memory is dropped.
  const facts = new Map<string, unknown>();
  const remembered = <T>(key: string, read: () => T): T => {
    if (facts.has(key)) return facts.get(key) as T;
    const value = read();
    if (value !== undefined && value !== false) {
      if (facts.size >= AUTH_FACTS_LIMIT) facts.clear();
      facts.set(key, value);
    }
    return value;
  };

  /**
   * Runs `fn` in a transaction; its events are emitted only once it committed (and foreign
   * keys are on again). `withoutForeignKeys`: for erasure.ts, which deletes stream rows without
   * their cascade.
   */
  const write = <T>(fn: (sink: EventSink) => T, withoutForeignKeys = false): T => {
    if (closed) throw new Error("store is closed");
    facts.clear();
    const sink: EventSink = [];
    let result: T;
    if (withoutForeignKeys) {
      // Foreign keys can be switched only outside a transaction; better-sqlite3 runs this
      // synchronously, so no other statement of this connection runs between.
      db.pragma("foreign_keys = OFF");
      try {
        result = db.transaction(() => fn(sink))();
      } finally {
        db.pragma("foreign_keys = ON");
      }
    } else {
      result = db.transaction(() => fn(sink))();
    }
    emit(sink);
    return result;
  };

  const logEvent = (sink: EventSink, subjectId: string, body: SubjectEventBody, now: Date): SubjectEvent => {
    const row = stmt("UPDATE subjects SET event_seq = event_seq + 1 WHERE subject_id = ? RETURNING event_seq, subject_key").get(
      subjectId,
    ) as { event_seq: number; subject_key: number } | undefined;
    // Stryker disable next-line StringLiteral: unreachable: every caller read the subject, or a row of it (foreign keys), in this transaction; and no error text of the store reaches a client (INTERNAL)
    if (row === undefined) throw new Error("event for a missing subject");
    if (body.kind === "deltas-appended") {
      // The batch is named, not copied: readEvents joins its stream and deltas back.
      stmt("INSERT INTO subject_events (subject_key, seq, committed_at, body, batch_stream, batch_first, batch_count) VALUES (?, ?, ?, '', ?, ?, ?)").run(
        row.subject_key,
        row.event_seq,
        now.getTime(),
        body.stream.id,
        body.firstVersion,
        body.count,
      );
    } else {
      stmt("INSERT INTO subject_events (subject_key, seq, committed_at, body) VALUES (?, ?, ?, ?)").run(
        row.subject_key,
        row.event_seq,
        now.getTime(),
        encodeEventBody(body),
      );
    }
    const event: SubjectEvent = { subjectId, sequence: row.event_seq, committedAt: now, body };
    sink.push(event);
    return event;
  };

  const nextOrd = (subjectId: string): number => {
    const row = stmt("UPDATE subjects SET next_ord = next_ord + 1 WHERE subject_id = ? RETURNING next_ord").get(
      subjectId,
    ) as { next_ord: number } | undefined;
    // Stryker disable next-line StringLiteral: unreachable: every caller read or inserted the subject in this transaction; and no error text of the store reaches a client (INTERNAL)
    if (row === undefined) throw new Error("ordinal for a missing subject");
    return row.next_ord;
  };

  const subjectExists = (subjectId: string): boolean =>
    stmt("SELECT 1 FROM subjects WHERE subject_id = ?").get(subjectId) !== undefined;

  // --- stream helpers -------------------------------------------------------------------

  const STREAM_COLUMNS =
    "subject_id, stream_id, uid, type, encoding, conflict_policy, owner_platform, genesis_hash, head_version, head_hash, horizon_version, horizon_hash, created_at, updated_at";

  // With the stream's key (migration 10), which the append's inserts take: one statement less per append.
  const APPEND_HEAD_SQL = `SELECT ${STREAM_COLUMNS}, state_version, state_lag_bytes,
      (SELECT stream_key FROM stream_keys k WHERE k.subject_id = streams.subject_id AND k.stream_id = streams.stream_id) AS stream_key
    FROM streams WHERE subject_id = ? AND stream_id = ?`;
  const STREAM_ROW_SQL = `SELECT ${STREAM_COLUMNS} FROM streams WHERE subject_id = ? AND stream_id = ?`;

  const streamRow = (subjectId: string, streamId: string): StreamRow | undefined =>
    stmt(STREAM_ROW_SQL).get(subjectId, streamId) as
      | StreamRow
      | undefined;

  /** How far a stream's head is from its newest stored state. */
  const stateLag = (subjectId: string, streamId: string): StateLag => {
    const row = stmt("SELECT state_version, state_lag_bytes FROM streams WHERE subject_id = ? AND stream_id = ?").get(subjectId, streamId) as
      | { state_version: number; state_lag_bytes: number }
      | undefined;
    return { version: row?.state_version ?? 0, bytes: row?.state_lag_bytes ?? 0 };
  };
  /** Adds payload bytes to what separates the head from the newest stored state. */
  const addStateLag = (subjectId: string, streamId: string, bytes: number): void => {
    stmt("UPDATE streams SET state_lag_bytes = state_lag_bytes + ? WHERE subject_id = ? AND stream_id = ?").run(bytes, subjectId, streamId);
  };
  /** Records a stored state at `version` as the newest, if it is. */
  const storedStateAt = (subjectId: string, streamId: string, version: number): void => {
    stmt(
      `UPDATE streams SET state_version = ?, state_lag_bytes = (SELECT COALESCE(SUM(length(payload) + payload_bytes), 0) FROM deltas WHERE stream_key = ${STREAM_KEY} AND version > ?)
       WHERE subject_id = ? AND stream_id = ? AND state_version < ?`,
    ).run(version, subjectId, streamId, version, subjectId, streamId, version);
  };

  const checkVersion = (row: StreamRow, version: number): VersionCheck | undefined => {
    if (version > row.head_version) return { kind: "ahead-of-head", headVersion: row.head_version };
    if (version < row.horizon_version) return { kind: "below-horizon", horizonVersion: row.horizon_version };
    return undefined;
  };

  /** Chain hash at a version already known to be inside [horizon, head]. */
  const hashAt = (row: StreamRow, version: number): Buffer => {
    if (version === row.head_version) return row.head_hash;
    if (version === row.horizon_version) return row.horizon_hash;
    const delta = stmt(`SELECT hash FROM deltas WHERE stream_key = ${STREAM_KEY} AND version = ?`).get(
      row.subject_id,
      row.stream_id,
      version,
    ) as { hash: Buffer } | undefined;
    if (delta === undefined) throw new Error(`retained delta ${version} is missing`);
    return delta.hash;
  };

  /**
   * A stored delta's prev_hash is an empty blob when it is the previous delta's hash (or the
   * horizon's), as it is for every delta the server chains itself: 32 bytes a delta need not
   * repeat. Rows come in version order; each gap-free run needs one lookup at most.
   */
  const linkedDeltas = (row: StreamRow, rows: readonly DeltaRow[]): DeltaRecord[] => {
    let previous: DeltaRow | undefined;
    return rows.map((stored) => {
      let d = stored;
      if (d.prev_hash.length === 0) {
        d = { ...d, prev_hash: previous !== undefined && previous.version === d.version - 1 ? previous.hash : hashAt(row, d.version - 1) };
      }
      previous = d;
      return toDelta(d, row);
    });
  };

  /**
   * {@link linkedDeltas} with the payloads kept in chunks read in one go: for the one read that
   * must stay inside its transaction (an import completing a batch an earlier call began).
   */
  const linkedDeltasWhole = (row: StreamRow, rows: readonly DeltaRow[]): DeltaRecord[] =>
    linkedDeltas(row, rows).map((d, i) => {
      const ref = payloadChunksRef(rows[i]!);
      if (ref === undefined) return d;
      const payload = jsonStates.readNow(row.subject_id, row.stream_id, ref);
      if (payload === undefined) throw new Error(`the payload of retained delta ${d.version} is missing`);
      return { ...d, payload };
    });

  // Never below the horizon: a compaction leaves the deltas there to a background deletion.
  const deltaRowsBetween = (row: StreamRow, afterVersion: number, upTo: number, limit: number): DeltaRow[] =>
    stmt(`${SELECT_DELTAS} AND d.version > ? AND d.version <= ? ORDER BY d.version LIMIT ?`).all(
      row.subject_id,
      row.stream_id,
      Math.max(afterVersion, row.horizon_version),
      upTo,
      limit,
    ) as DeltaRow[];

  /** Payloads kept in chunks, read a chunk per statement; undefined when one is gone (its delta deleted meanwhile). */
  const withPayloads = (row: { subject_id: string; stream_id: string }, deltas: readonly DeltaRecord[], rows: readonly DeltaRow[]): Promise<DeltaRecord[] | undefined> =>
    withChunkedPayloads(deltas, rows, (ref) => jsonStates.read(row.subject_id, row.stream_id, ref));

  /** Deltas with their payloads; undefined when some were deleted while their chunks were read. */
  const deltasBetween = async (row: StreamRow, afterVersion: number, upTo: number, limit: number): Promise<DeltaRecord[] | undefined> => {
    const rows = deltaRowsBetween(row, afterVersion, upTo, limit);
    return withPayloads(row, linkedDeltas(row, rows), rows);
  };

  /**
   * Deltas `afterVersion + 1 ..= upTo`, a statement per {@link DELTAS_PER_READ} and a turn
   * between (they may weigh as much as a state); undefined when some are gone meanwhile.
   */
  const deltasInPages = async (row: StreamRow, afterVersion: number, upTo: number): Promise<DeltaRecord[] | undefined> => {
    const deltas: DeltaRecord[] = [];
    for (let at = afterVersion; at < upTo; ) {
      if (at > afterVersion) await yieldTurn();
      let page: DeltaRecord[] | undefined;
      try {
        page = await deltasBetween(row, at, upTo, DELTAS_PER_READ);
      } catch {
        return undefined; // a delta a page needed for its chain was deleted by a compaction
      }
      if (page === undefined || page.length === 0 || page[0]!.version !== at + 1 || page.some((d, i) => d.version !== at + 1 + i)) return undefined;
      deltas.push(...page);
      at = page[page.length - 1]!.version;
    }
    return deltas;
  };

  /** CompactStream's transaction, with the state at the horizon already staged. */
  const compactInTransaction = (input: CompactInput, staged: StagedState | undefined, sink: EventSink): { result: CompactResult; released: string[] } => {
    const unchanged = (result: CompactResult) => ({ result, released: [] });
    const row = streamRow(input.subjectId, input.streamId);
    if (row === undefined) return unchanged({ kind: "stream-not-found" });
    if (input.horizonVersion > row.head_version) return unchanged({ kind: "ahead-of-head", headVersion: row.head_version });
    if (input.horizonVersion <= row.horizon_version) return unchanged({ kind: "unchanged", stream: toStream(row) });
    const key = [input.subjectId, input.streamId] as const;
    let released: string[] = [];
    if (row.encoding === Encoding.Opaque) {
      const snap = stmt("SELECT 1 FROM snapshots WHERE subject_id = ? AND stream_id = ? AND version = ?").get(...key, input.horizonVersion);
      if (snap === undefined) return unchanged({ kind: "snapshot-required" });
      stmt("DELETE FROM snapshots WHERE subject_id = ? AND stream_id = ? AND version < ?").run(...key, input.horizonVersion);
    } else {
      if (staged === undefined) throw new Error("JSON compaction needs the state at the horizon");
      released = [...jsonStates.publish(...key, input.horizonVersion, staged, true).replaced, ...jsonStates.releaseBelow(...key, input.horizonVersion)];
    }
    const horizonHash = hashAt(row, input.horizonVersion);
    if (row.encoding !== Encoding.Opaque) storedStateAt(input.subjectId, input.streamId, input.horizonVersion);
    const now = input.now.getTime();
    stmt(
      "UPDATE streams SET horizon_version = ?, horizon_hash = ?, updated_at = ? WHERE subject_id = ? AND stream_id = ?",
    ).run(input.horizonVersion, horizonHash, now, ...key);
    const stream = toStream({ ...row, horizon_version: input.horizonVersion, horizon_hash: horizonHash, updated_at: now });
    logEvent(sink, input.subjectId, { kind: "stream-compacted", stream }, input.now);
    return { result: { kind: "compacted", stream }, released };
  };

  /** Inserts a new stream row at its head; a JSON stream's state there is kept as its first base. */
  const insertStream = (row: StreamRow, jsonState: Uint8Array | undefined): void => {
    stmt(
      // created_seq: events logged from now on belong to this incarnation of the stream id.
      `INSERT INTO streams (${STREAM_COLUMNS}, state_version, created_seq) VALUES (@subject_id, @stream_id, @uid, @type, @encoding, @conflict_policy, @owner_platform, @genesis_hash, @head_version, @head_hash, @horizon_version, @horizon_hash, @created_at, @updated_at, @head_version, (SELECT event_seq FROM subjects WHERE subject_id = @subject_id))`,
    ).run(row);
    stmt("INSERT INTO stream_keys (subject_id, stream_id) VALUES (?, ?)").run(row.subject_id, row.stream_id);
    if (jsonState !== undefined) jsonStates.insertWhole(row.subject_id, row.stream_id, row.head_version, jsonState, row.updated_at);
  };

  // --- appends (group commit) -----------------------------------------------------------

  let queue: PendingAppend[] = [];
  let flushScheduled = false;
  /** Large expected payloads of appends go ahead in chunks; after a close, the next open sweeps what is left. */
  const payloadStager: PayloadStager = {
    stage: (subjectId, streamId, payload, now) => jsonStates.stage(subjectId, streamId, payload, now),
    drop: (subjectId, streamId, ids) => {
      if (!closed) jsonStates.drop(subjectId, streamId, ids);
    },
  };

  const appendOne = (input: AppendInput, staged: ReadonlyMap<Uint8Array, StagedState>, sink: EventSink): AppendResult => {
    // The head and its state in one read: every append needs both.
    const row = stmt(APPEND_HEAD_SQL).get(input.subjectId, input.streamId) as (StreamRow & { state_version: number; state_lag_bytes: number; stream_key: number }) | undefined;
    if (row === undefined || row.uid !== input.streamUid) return { kind: "stream-not-found" };
    // As on PostgreSQL (ReplicaStateStore.holdSubject), for the one process that opens the file.
    if (((stmt("SELECT hold_until FROM subjects WHERE subject_id = ?").get(input.subjectId) as { hold_until: number } | undefined)?.hold_until ?? 0) > Date.now()) {
      throw new SubjectHeldError(input.subjectId);
    }

    if (input.clientSequence !== undefined && input.deviceId !== undefined) {
      // Only the latest outcome is kept (APPEND-060): its number is the last acknowledged one.
      const stored = stmt(
        "SELECT client_sequence, fingerprint, outcome FROM client_outcomes WHERE subject_id = ? AND stream_id = ? AND device_id = ?",
      ).get(input.subjectId, input.streamId, input.deviceId) as
        | { client_sequence: number; fingerprint: Buffer; outcome: string }
        | undefined;
      const last = stored?.client_sequence ?? 0;
      if (stored !== undefined && input.clientSequence < last) {
        return { kind: "sequence-expired", clientSequence: input.clientSequence, expectedSequence: last + 1 };
      }
      if (stored !== undefined && input.clientSequence === last) {
        // An empty fingerprint marks an imported outcome (PORT-027): no request travels in a bundle, so any repeat replays it.
        if (stored.fingerprint.length === 0 || Buffer.from(input.fingerprint).equals(stored.fingerprint)) {
          return { kind: "replayed", outcome: decodeOutcome(stored.outcome) };
        }
        return { kind: "sequence-reused", clientSequence: input.clientSequence, expectedSequence: last + 1 };
      }
      if (input.clientSequence > last + 1) {
        return { kind: "sequence-gap", expectedSequence: last + 1 };
      }
    }

    if (
      input.expectedVersion === undefined &&
      row.conflict_policy === Policy.RequireExpectedVersion &&
      input.enforceConflictPolicy !== false
    ) {
      return { kind: "expected-version-required" };
    }
    if (input.expectedVersion !== undefined && input.expectedVersion !== row.head_version) {
      return { kind: "version-conflict", headVersion: row.head_version, headHash: row.head_hash };
    }

    const stream = toStream(row);
    const built = input.build({ stream, stateLag: { version: row.state_version, bytes: row.state_lag_bytes } });
    // Stryker disable next-line StringLiteral: unreachable: the services refuse an empty batch before the store (APPEND-033); and no error text of the store reaches a client
    if (built.deltas.length === 0) throw new Error("a batch needs at least one delta");

    const nowMs = input.now.getTime();
    const first = row.head_version + 1;
    const size = built.deltas.length;
    const insert = stmt(
      `INSERT INTO deltas (stream_key, version, payload, prev_hash, hash, device_id, client_sequence, batch_first, batch_size, committed_at, payload_id, payload_chunks, payload_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const deltas: DeltaRecord[] = [];
    built.deltas.forEach((delta, i) => {
      const version = first + i;
      // A payload written ahead in chunks is named, not inserted (store/state-chunks.ts).
      const chunks = staged.get(delta.payload);
      insert.run(
        row.stream_key,
        version,
        chunks === undefined ? delta.payload : EMPTY_PAYLOAD,
        storedPrevHash(delta.prevHash, i === 0 ? row.head_hash : built.deltas[i - 1]!.hash),
        delta.hash,
        input.deviceId ?? null,
        input.clientSequence ?? 0,
        first,
        size,
        nowMs,
        chunks?.stateId ?? null,
        chunks?.chunks ?? 0,
        chunks?.sizeBytes ?? 0,
      );
      deltas.push({
        subjectId: row.subject_id,
        streamId: row.stream_id,
        streamUid: row.uid,
        version,
        encoding: stream.encoding,
        payload: delta.payload,
        prevHash: delta.prevHash,
        hash: delta.hash,
        deviceId: input.deviceId,
        clientSequence: input.clientSequence ?? 0,
        batchFirstVersion: first,
        batchSize: size,
        committedAt: input.now,
      });
    });
    const last = deltas[deltas.length - 1]!;
    const headVersion = last.version;
    // JSON streams store no state here: the service keeps the head in memory and stores a
    // full state by its rule (putJsonState); the row only counts the payload bytes between.
    const lagBytes = row.encoding === Encoding.Opaque ? 0 : deltas.reduce((sum, d) => sum + d.payload.length, 0);
    stmt(
      "UPDATE streams SET head_version = ?, head_hash = ?, state_lag_bytes = state_lag_bytes + ?, updated_at = ? WHERE subject_id = ? AND stream_id = ?",
    ).run(headVersion, last.hash, lagBytes, nowMs, row.subject_id, row.stream_id);

    const outcome: AppendOutcome = {
      receipts: deltas.map((d) => ({ version: d.version, hash: d.hash })),
      headVersion,
      headHash: last.hash,
    };
    if (input.clientSequence !== undefined && input.deviceId !== undefined) {
      stmt(
        "INSERT OR REPLACE INTO client_outcomes (subject_id, stream_id, device_id, client_sequence, fingerprint, outcome) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(input.subjectId, input.streamId, input.deviceId, input.clientSequence, input.fingerprint, encodeOutcome(outcome));
    }
    const ref = { id: row.stream_id, uid: row.uid, type: row.type, ownerPlatformId: row.owner_platform };
    logEvent(sink, row.subject_id, { kind: "deltas-appended", stream: ref, firstVersion: first, count: size, deltas }, input.now);
    return { kind: "committed", outcome, deltas };
  };

  const flush = (): void => {
    flushScheduled = false;
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    // Stryker disable next-line BlockStatement: unreachable: close() flushes the queue before it sets closed, and appendBatch refuses to queue once closed, so a flush after close finds the queue empty
    if (closed) {
      // Stryker disable next-line StringLiteral: unreachable (see above), and no error text of the store reaches a client
      for (const p of batch) p.reject(new Error("store is closed"));
      return;
    }
    const results: AppendResult[] = [];
    const sink: EventSink = [];
    try {
      db.transaction(() => {
        for (const pending of batch) {
          const own: EventSink = [];
          try {
            // A nested better-sqlite3 transaction is a savepoint: a throw undoes this
            // append only, and its events are dropped with it.
            results.push(db.transaction(() => appendOne(pending.input, pending.staged, own))());
            sink.push(...own);
          } catch (error) {
            results.push({ kind: "rejected", error });
          }
        }
      })();
    } catch (error) {
      for (const p of batch) p.reject(error);
      return;
    }
    options.onGroupCommit?.(batch.length);
    emit(sink);
    batch.forEach((p, i) => p.resolve(results[i]!));
  };

  // --- the store ------------------------------------------------------------------------

  const store: Omit<SqliteStore, keyof PortabilityStore | keyof ReplicaStateStore> = {
    db,

    async getEpoch() {
      return epoch;
    },
    async getInstanceSecret() {
      return new Uint8Array(secret);
    },
    onNotification(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (closed) return;
      flush();
      closed = true;
      clearTimeout(scrubTimer);
      listeners.clear();
      db.close();
    },

    // --- subjects and links ---

    async findAccountLink(platformId, accountId) {
      const row = stmt("SELECT * FROM account_links WHERE platform_id = ? AND account_id = ?").get(platformId, accountId) as
        | LinkRow
        | undefined;
      return row === undefined ? undefined : toLink(row);
    },

    async createSubjectWithLink(input: CreateSubjectInput): Promise<SubjectWithLink> {
      return write(() => {
        const existing = stmt("SELECT * FROM account_links WHERE platform_id = ? AND account_id = ?").get(
          input.platformId,
          input.accountId,
        ) as LinkRow | undefined;
        if (existing !== undefined) {
          const subject = stmt("SELECT subject_id, created_at FROM subjects WHERE subject_id = ?").get(
            existing.subject_id,
          ) as { subject_id: string; created_at: number };
          return {
            subject: { id: subject.subject_id, createdAt: new Date(subject.created_at) },
            link: toLink(existing),
            created: false,
          };
        }
        const now = input.now.getTime();
        stmt("INSERT INTO subjects (subject_id, created_at, subject_key) VALUES (?, ?, (SELECT IFNULL(MAX(subject_key), 0) + 1 FROM subjects))").run(input.subjectId, now);
        const ord = nextOrd(input.subjectId);
        stmt(
          "INSERT INTO account_links (subject_id, link_id, platform_id, account_id, created_at, ord) VALUES (?, ?, ?, ?, ?, ?)",
        ).run(input.subjectId, input.linkId, input.platformId, input.accountId, now, ord);
        const link: AccountLinkRecord = {
          subjectId: input.subjectId,
          id: input.linkId,
          platformId: input.platformId,
          accountId: input.accountId,
          createdAt: input.now,
        };
        return { subject: { id: input.subjectId, createdAt: input.now }, link, created: true };
      });
    },

    async getSubject(subjectId): Promise<SubjectRecord | undefined> {
      const row = stmt("SELECT subject_id, created_at FROM subjects WHERE subject_id = ?").get(subjectId) as
        | { subject_id: string; created_at: number }
        | undefined;
      return row === undefined ? undefined : { id: row.subject_id, createdAt: new Date(row.created_at) };
    },

    async hasAccountLink(subjectId, platformId) {
      return remembered(
        `link\0${subjectId}\0${platformId}`,
        () => stmt("SELECT 1 FROM account_links WHERE subject_id = ? AND platform_id = ? LIMIT 1").get(subjectId, platformId) !== undefined,
      );
    },

    async getAccountLink(subjectId, linkId) {
      const row = stmt("SELECT * FROM account_links WHERE subject_id = ? AND link_id = ?").get(subjectId, linkId) as
        | LinkRow
        | undefined;
      return row === undefined ? undefined : toLink(row);
    },

    async listAccountLinks(subjectId, page) {
      const rows = stmt("SELECT * FROM account_links WHERE subject_id = ? AND ord > ? ORDER BY ord LIMIT ?").all(
        subjectId,
        ordAfter(page),
        page.limit + 1,
      ) as LinkRow[];
      return pageOf(rows, page.limit, (r) => String(r.ord), toLink);
    },

    async deleteAccountLink(subjectId, linkId) {
      const result = write(() => {
        const row = stmt("SELECT platform_id FROM account_links WHERE subject_id = ? AND link_id = ?").get(subjectId, linkId) as
          | { platform_id: string }
          | undefined;
        if (row === undefined) return { outcome: "not-found" as const };
        const count = (stmt("SELECT COUNT(*) AS n FROM account_links WHERE subject_id = ?").get(subjectId) as { n: number }).n;
        if (count <= 1) return { outcome: "last-link" as const };
        stmt("DELETE FROM account_links WHERE subject_id = ? AND link_id = ?").run(subjectId, linkId);
        return { outcome: "deleted" as const, platformId: row.platform_id };
      });
      if (result.outcome === "deleted") notify({ kind: "account-link-deleted", subjectId, platformId: result.platformId });
      return result.outcome;
    },

    async createLinkCode(input) {
      write(() => {
        stmt(
          "INSERT INTO link_codes (code_hash, subject_id, platform_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        ).run(input.codeHash, input.subjectId, input.platformId, input.now.getTime(), input.expiresAt.getTime());
      });
    },

    async redeemLinkCode(input: RedeemLinkCodeInput): Promise<RedeemLinkCodeResult> {
      return write(() => {
        const code = stmt("SELECT subject_id, expires_at, used_at FROM link_codes WHERE code_hash = ?").get(input.codeHash) as
          | { subject_id: string; expires_at: number; used_at: number | null }
          | undefined;
        const now = input.now.getTime();
        if (code === undefined || code.expires_at <= now) return { kind: "invalid" };
        if (code.used_at !== null) return { kind: "invalid" };
        const existing = stmt("SELECT * FROM account_links WHERE platform_id = ? AND account_id = ?").get(
          input.platformId,
          input.accountId,
        ) as LinkRow | undefined;
        if (existing !== undefined && existing.subject_id !== code.subject_id) return { kind: "linked-elsewhere" };
        stmt("UPDATE link_codes SET used_at = ? WHERE code_hash = ?").run(now, input.codeHash);
        if (existing !== undefined) return { kind: "linked", link: toLink(existing) };
        const ord = nextOrd(code.subject_id);
        stmt(
          "INSERT INTO account_links (subject_id, link_id, platform_id, account_id, created_at, ord) VALUES (?, ?, ?, ?, ?, ?)",
        ).run(code.subject_id, input.linkId, input.platformId, input.accountId, now, ord);
        return {
          kind: "linked",
          link: {
            subjectId: code.subject_id,
            id: input.linkId,
            platformId: input.platformId,
            accountId: input.accountId,
            createdAt: input.now,
          },
        };
      });
    },

    // --- devices ---

    async registerDevice(input: RegisterDeviceInput): Promise<RegisterDeviceResult> {
      return write(() => {
        if (!subjectExists(input.subjectId)) return { kind: "subject-not-found" };
        const row = stmt("SELECT * FROM devices WHERE subject_id = ? AND device_id = ?").get(input.subjectId, input.deviceId) as
          | DeviceRow
          | undefined;
        if (row !== undefined) {
          if (row.revoked_at !== null) return { kind: "revoked", device: toDevice(row) };
          // Client sequences are per device, so a device id belongs to one platform for good.
          if (row.platform_id !== input.platformId) return { kind: "other-platform", device: toDevice(row) };
          if (input.displayName !== undefined && input.displayName !== row.display_name) {
            stmt("UPDATE devices SET display_name = ? WHERE subject_id = ? AND device_id = ?").run(
              input.displayName,
              input.subjectId,
              input.deviceId,
            );
            return { kind: "updated", device: toDevice({ ...row, display_name: input.displayName }) };
          }
          return { kind: "updated", device: toDevice(row) };
        }
        const ord = nextOrd(input.subjectId);
        const created: DeviceRow = {
          subject_id: input.subjectId,
          device_id: input.deviceId,
          platform_id: input.platformId,
          display_name: input.displayName ?? "",
          created_at: input.now.getTime(),
          revoked_at: null,
          ord,
        };
        stmt(
          "INSERT INTO devices (subject_id, device_id, platform_id, display_name, created_at, revoked_at, ord) VALUES (@subject_id, @device_id, @platform_id, @display_name, @created_at, @revoked_at, @ord)",
        ).run(created);
        return { kind: "registered", device: toDevice(created) };
      });
    },

    async getDevice(subjectId, deviceId): Promise<DeviceRecord | undefined> {
      return remembered(`device\0${subjectId}\0${deviceId}`, () => {
        const row = stmt("SELECT * FROM devices WHERE subject_id = ? AND device_id = ?").get(subjectId, deviceId) as
          | DeviceRow
          | undefined;
        return row === undefined ? undefined : toDevice(row);
      });
    },

    async listDevices(subjectId, page) {
      const rows = stmt("SELECT * FROM devices WHERE subject_id = ? AND ord > ? ORDER BY ord LIMIT ?").all(
        subjectId,
        ordAfter(page),
        page.limit + 1,
      ) as DeviceRow[];
      return pageOf(rows, page.limit, (r) => String(r.ord), toDevice);
    },

    async revokeDevice(subjectId, deviceId, now) {
      return write((sink) => {
        const row = stmt("SELECT * FROM devices WHERE subject_id = ? AND device_id = ?").get(subjectId, deviceId) as
          | DeviceRow
          | undefined;
        if (row === undefined) return undefined;
        if (row.revoked_at !== null) return toDevice(row);
        stmt("UPDATE devices SET revoked_at = ? WHERE subject_id = ? AND device_id = ?").run(now.getTime(), subjectId, deviceId);
        logEvent(sink, subjectId, { kind: "device-revoked", deviceId }, now);
        return toDevice({ ...row, revoked_at: now.getTime() });
      });
    },

    // --- grants ---

    async createGrant(input: CreateGrantInput): Promise<GrantRecord> {
      return write(() => {
        const row: GrantRow = {
          subject_id: input.subjectId,
          grant_id: input.id,
          grantor_platform: input.grantorPlatformId,
          grantee_platform: input.granteePlatformId,
          stream_type: input.streamType,
          access: input.access,
          created_at: input.now.getTime(),
          revoked_at: null,
          ord: nextOrd(input.subjectId),
        };
        stmt(
          "INSERT INTO grants (subject_id, grant_id, grantor_platform, grantee_platform, stream_type, access, created_at, revoked_at, ord) VALUES (@subject_id, @grant_id, @grantor_platform, @grantee_platform, @stream_type, @access, @created_at, @revoked_at, @ord)",
        ).run(row);
        return toGrant(row);
      });
    },

    async getGrant(subjectId, grantId) {
      const row = stmt("SELECT * FROM grants WHERE subject_id = ? AND grant_id = ?").get(subjectId, grantId) as
        | GrantRow
        | undefined;
      return row === undefined ? undefined : toGrant(row);
    },

    async listGrants(subjectId, platformId, page) {
      const rows = stmt(
        "SELECT * FROM grants WHERE subject_id = ? AND revoked_at IS NULL AND (grantor_platform = ? OR grantee_platform = ?) AND ord > ? ORDER BY ord LIMIT ?",
      ).all(subjectId, platformId, platformId, ordAfter(page), page.limit + 1) as GrantRow[];
      return pageOf(rows, page.limit, (r) => String(r.ord), toGrant);
    },

    async listActiveGrants(subjectId) {
      // A copy of the remembered list: callers may keep or change what they get.
      return [
        ...remembered(`grants\0${subjectId}`, () =>
          (stmt("SELECT * FROM grants WHERE subject_id = ? AND revoked_at IS NULL ORDER BY ord").all(subjectId) as GrantRow[]).map(toGrant),
        ),
      ];
    },

    async revokeGrant(subjectId, grantId, now) {
      return write((sink) => {
        const row = stmt("SELECT * FROM grants WHERE subject_id = ? AND grant_id = ?").get(subjectId, grantId) as
          | GrantRow
          | undefined;
        if (row === undefined) return undefined;
        if (row.revoked_at !== null) return toGrant(row);
        stmt("UPDATE grants SET revoked_at = ? WHERE subject_id = ? AND grant_id = ?").run(now.getTime(), subjectId, grantId);
        const grant = toGrant({ ...row, revoked_at: now.getTime() });
        logEvent(sink, subjectId, { kind: "grant-revoked", grant }, now);
        return grant;
      });
    },

    async eraseSubject(subjectId) {
      // The subject answers as erased from here on; its large rows go in steps (erasure.ts).
      if (!erasure.detach(subjectId)) return false;
      notify({ kind: "subject-erased", subjectId });
      // Closed meanwhile: the data is not gone yet, so this is no success; the next open
      // finishes the erasure.
      if (!(await removeErasedRows(subjectId))) throw new Error("store is closed");
      // ERASE-004: a reader pinning the WAL delays the scrub; it is retried until done.
      if (!(await scrubWal(ERASE_SCRUB_WAIT_MS))) {
        options.onPendingScrub?.(subjectId);
      }
      return true;
    },

    // --- streams ---

    async createStream(input: CreateStreamInput): Promise<CreateStreamResult> {
      // The rows of a deleted stream of this id would become this stream's (erasure.ts).
      return erasure.createWhenPurged(input.subjectId, input.id, () =>
        write((sink): CreateStreamResult | undefined => {
          if (!subjectExists(input.subjectId)) return { kind: "subject-not-found" };
          if (streamRow(input.subjectId, input.id) !== undefined) return { kind: "already-exists" };
          // A deletion of this id that began while this call waited: wait for it too.
          if (erasure.purgePending(input.subjectId, input.id)) return undefined;
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
            head_version: 0,
            head_hash: Buffer.from(input.genesisHash),
            horizon_version: 0,
            horizon_hash: Buffer.from(input.genesisHash),
            created_at: now,
            updated_at: now,
          };
          insertStream(row, input.initialState);
          const stream = toStream(row);
          logEvent(sink, input.subjectId, { kind: "stream-created", stream }, input.now);
          return { kind: "created", stream };
        }),
      );
    },

    async getStream(subjectId, streamId) {
      const row = streamRow(subjectId, streamId);
      return row === undefined ? undefined : toStream(row);
    },

    async listStreams(subjectId, options, page) {
      const { clause, params } = visibilityClause(options.visibility);
      const typeClause = options.type === undefined ? "" : " AND type = ?";
      const sql = `SELECT ${STREAM_COLUMNS} FROM streams WHERE subject_id = ? AND stream_id > ? AND ${clause}${typeClause} ORDER BY stream_id LIMIT ?`;
      const args: unknown[] = [subjectId, page.after ?? "", ...params];
      if (options.type !== undefined) args.push(options.type);
      args.push(page.limit + 1);
      // Not cached: the clause varies with the caller's grants.
      const rows = db.prepare(sql).all(...args) as StreamRow[];
      return pageOf(rows, page.limit, (r) => r.stream_id, toStream);
    },

    async deleteStream(subjectId, streamId, now) {
      // The stream answers as deleted from here on; its rows go in steps (erasure.ts).
      const stream = erasure.detachStream(subjectId, streamId, (sink) => {
        const row = streamRow(subjectId, streamId);
        if (row === undefined) return undefined;
        logEvent(
          sink,
          subjectId,
          { kind: "stream-deleted", stream: { id: row.stream_id, uid: row.uid, type: row.type, ownerPlatformId: row.owner_platform } },
          now,
        );
        return toStream(row);
      });
      if (stream === undefined) return undefined;
      // Closed meanwhile: rows of the stream are left, so this is no success; the next open
      // finishes the work.
      if (!(await erasure.streamPurged(subjectId, streamId))) throw new Error("store is closed");
      return stream;
    },

    // --- deltas ---

    appendBatch(input) {
      const queued = (staged: ReadonlyMap<Uint8Array, StagedState>): Promise<AppendResult> =>
        new Promise<AppendResult>((resolve, reject) => {
          if (closed) {
            reject(new Error("store is closed"));
            return;
          }
          queue.push({ input, staged, resolve, reject });
          if (!flushScheduled) {
            flushScheduled = true;
            setImmediate(flush);
          }
        });
      return appendWithStagedPayloads(input.subjectId, input.streamId, input.expectedPayloads, payloadStager, () => closed, queued);
    },

    async listDeltas(subjectId, streamId, afterVersion, limit) {
      for (let attempt = 1; attempt <= STATE_READ_ATTEMPTS; attempt++) {
        const row = streamRow(subjectId, streamId);
        if (row === undefined) return [];
        const deltas = await deltasBetween(row, afterVersion, Number.MAX_SAFE_INTEGER, limit);
        if (deltas !== undefined) return deltas;
      }
      throw new StateReadRaced();
    },

    async hashAtVersion(subjectId, streamId, version) {
      const row = streamRow(subjectId, streamId);
      if (row === undefined) return MISSING_STREAM;
      return checkVersion(row, version) ?? hashAt(row, version);
    },

    async loadStateBase(subjectId, streamId, version): Promise<StateBase | VersionCheck> {
      // The row, the state's chunks and the deltas each a short statement apart: a compaction
      // may let go of the base meanwhile, which the reads see (a chunk or delta gone) and retry.
      for (let attempt = 1; attempt <= STATE_READ_ATTEMPTS; attempt++) {
        const row = streamRow(subjectId, streamId);
        if (row === undefined) return MISSING_STREAM;
        const bad = checkVersion(row, version);
        if (bad !== undefined) return bad;
        const ref = jsonStates.newestAtOrBelow(subjectId, streamId, version);
        if (ref === undefined) throw new Error("no stored state at or below the horizon");
        const baseState = await jsonStates.read(subjectId, streamId, ref);
        const deltas = baseState === undefined ? undefined : await deltasInPages(row, ref.version, version);
        if (baseState !== undefined && deltas !== undefined) return { stream: toStream(row), baseVersion: ref.version, baseState, deltas };
      }
      throw new StateReadRaced();
    },

    async putJsonState(input: PutJsonStateInput): Promise<boolean> {
      const usable = (row: StreamRow | undefined): boolean =>
        row !== undefined && row.uid === input.streamUid && row.encoding !== Encoding.Opaque && checkVersion(row, input.version) === undefined;
      if (!usable(streamRow(input.subjectId, input.streamId))) return false;
      const staged = await jsonStates.stage(input.subjectId, input.streamId, input.state, Date.now());
      let published = false;
      try {
        return write((): boolean => {
          if (!usable(streamRow(input.subjectId, input.streamId))) return false;
          published = jsonStates.publish(input.subjectId, input.streamId, input.version, staged, false).published;
          storedStateAt(input.subjectId, input.streamId, input.version);
          return true;
        });
      } finally {
        if (!published) jsonStates.drop(input.subjectId, input.streamId, [staged.stateId]);
      }
    },

    // --- snapshots and compaction ---

    async putSnapshot(input: PutSnapshotInput): Promise<PutSnapshotResult> {
      return write((): PutSnapshotResult => {
        const row = streamRow(input.subjectId, input.streamId);
        if (row === undefined) return MISSING_STREAM;
        if (row.encoding !== Encoding.Opaque) return { kind: "not-opaque", encoding: row.encoding as 1 | 2 };
        const bad = checkVersion(row, input.version);
        if (bad !== undefined) return bad;
        const headHash = hashAt(row, input.version);
        const stream = toStream(row);
        if (!input.verify(stream, headHash)) return { kind: "mismatch" };
        const key = [input.subjectId, input.streamId, input.version] as const;
        stmt("DELETE FROM snapshots WHERE subject_id = ? AND stream_id = ? AND version = ?").run(...key);
        stmt(
          "INSERT INTO snapshots (subject_id, stream_id, version, head_hash, size_bytes, snapshot_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ).run(...key, headHash, input.sizeBytes, input.snapshotHash, input.now.getTime());
        const insert = stmt("INSERT INTO snapshot_chunks (subject_id, stream_id, version, idx, data) VALUES (?, ?, ?, ?, ?)");
        input.chunks.forEach((chunk, idx) => insert.run(...key, idx, chunk));
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
      const row = stmt(
        "SELECT * FROM snapshots WHERE subject_id = ? AND stream_id = ? AND version <= ? ORDER BY version DESC LIMIT 1",
      ).get(subjectId, streamId, atOrBelow) as SnapshotRow | undefined;
      return row === undefined ? undefined : toSnapshot(row);
    },

    async *readSnapshotChunks(subjectId, streamId, version) {
      // One query per chunk: an open iterator would lock the connection across awaits.
      for (let idx = 0; ; idx++) {
        if (closed) return;
        const row = stmt(
          "SELECT data FROM snapshot_chunks WHERE subject_id = ? AND stream_id = ? AND version = ? AND idx = ?",
        ).get(subjectId, streamId, version, idx) as { data: Buffer } | undefined;
        if (row === undefined) return;
        yield row.data;
      }
    },

    async listRetentionCandidates(retain, limit) {
      const rows = stmt(
        `SELECT ${STREAM_COLUMNS} FROM streams WHERE head_version - horizon_version > ? ORDER BY head_version - horizon_version DESC LIMIT ?`,
      ).all(retain, limit) as StreamRow[];
      return rows.map(toStream);
    },

    async compactStream(input: CompactInput): Promise<CompactResult> {
      // The state at the horizon is written (in chunks) before the transaction that names it.
      let staged: StagedState | undefined;
      if (input.stateAtHorizon !== undefined) {
        const before = streamRow(input.subjectId, input.streamId);
        if (before === undefined) return { kind: "stream-not-found" };
        if (before.encoding !== Encoding.Opaque && input.horizonVersion > before.horizon_version && input.horizonVersion <= before.head_version) {
          try {
            staged = await jsonStates.stage(input.subjectId, input.streamId, input.stateAtHorizon, input.now.getTime());
          } catch (error) {
            if (streamRow(input.subjectId, input.streamId) === undefined) return { kind: "stream-not-found" };
            throw error;
          }
        }
      }
      let released: string[] | undefined;
      try {
        return write((sink): CompactResult => {
          const result = compactInTransaction(input, staged, sink);
          if (result.result.kind === "compacted") released = result.released;
          return result.result;
        });
      } finally {
        if (released !== undefined) {
          jsonStates.drop(input.subjectId, input.streamId, released);
          jsonStates.trimDeltas(input.subjectId, input.streamId);
        } else if (staged !== undefined) jsonStates.drop(input.subjectId, input.streamId, [staged.stateId]);
      }
    },

    // --- checkpoints ---


    async createCheckpoint(input: CreateCheckpointInput): Promise<CreateCheckpointResult> {
      return write((): CreateCheckpointResult => {
        if (stmt("SELECT 1 FROM checkpoints WHERE subject_id = ? AND checkpoint_id = ?").get(input.subjectId, input.id) !== undefined) {
          return { kind: "already-exists" };
        }
        const entries: CheckpointEntryRecord[] = [];
        for (const [index, selector] of input.selectors.entries()) {
          const row = streamRow(input.subjectId, selector.streamId);
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
            headHash: hashAt(row, version),
          });
        }
        entries.sort((a, b) => Buffer.compare(Buffer.from(a.streamUid, "utf8"), Buffer.from(b.streamUid, "utf8")));
        const digest = input.digest(entries);
        const ord = nextOrd(input.subjectId);
        stmt(
          "INSERT INTO checkpoints (subject_id, checkpoint_id, resume, digest, device_id, platform_id, created_at, ord) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ).run(
          input.subjectId,
          input.id,
          JSON.stringify(input.resume),
          digest,
          input.deviceId ?? null,
          input.platformId,
          input.now.getTime(),
          ord,
        );
        const insert = stmt(
          "INSERT INTO checkpoint_entries (subject_id, checkpoint_id, idx, stream_id, stream_uid, stream_type, owner_platform, version, head_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        entries.forEach((e, idx) =>
          insert.run(input.subjectId, input.id, idx, e.streamId, e.streamUid, e.streamType, e.ownerPlatformId, e.version, e.headHash),
        );
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
      return readCheckpoint(subjectId, checkpointId);
    },

    async listCheckpoints(subjectId, page) {
      const after = page.after === undefined ? Number.MAX_SAFE_INTEGER : Number(page.after);
      const rows = stmt("SELECT * FROM checkpoints WHERE subject_id = ? AND ord < ? ORDER BY ord DESC LIMIT ?").all(
        subjectId,
        Number.isFinite(after) ? after : 0,
        page.limit + 1,
      ) as CheckpointRow[];
      return pageOf(rows, page.limit, (r) => String(r.ord), (r) => toCheckpoint(r, checkpointEntries(r.subject_id, r.checkpoint_id)));
    },

    async deleteCheckpoint(subjectId, checkpointId, now) {
      return write((sink) => {
        const deleted =
          stmt("DELETE FROM checkpoints WHERE subject_id = ? AND checkpoint_id = ?").run(subjectId, checkpointId).changes > 0;
        if (!deleted) return false;
        const pending = stmt("SELECT * FROM handoffs WHERE subject_id = ? AND checkpoint_id = ? AND state = 'offered'").all(
          subjectId,
          checkpointId,
        ) as HandoffRow[];
        for (const row of pending) expireHandoff(sink, row, now);
        return true;
      });
    },

    // --- handoffs ---

    async createHandoff(input: CreateHandoffInput): Promise<CreateHandoffResult> {
      return write((sink): CreateHandoffResult => {
        const checkpoint = readCheckpoint(input.subjectId, input.checkpointId);
        if (checkpoint === undefined) return { kind: "checkpoint-not-found" };
        if (input.targetDeviceId !== undefined) {
          const target = stmt("SELECT revoked_at FROM devices WHERE subject_id = ? AND device_id = ?").get(
            input.subjectId,
            input.targetDeviceId,
          ) as { revoked_at: number | null } | undefined;
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
        stmt(
          "INSERT INTO handoffs (subject_id, handoff_id, checkpoint_id, source_device, target_device, state, resolved_by, created_at, expires_at, resolved_at, checkpoint_streams) VALUES (@subject_id, @handoff_id, @checkpoint_id, @source_device, @target_device, @state, @resolved_by, @created_at, @expires_at, @resolved_at, @checkpoint_streams)",
        ).run(row);
        const handoff = toHandoff(row);
        logEvent(sink, input.subjectId, { kind: "handoff-offered", handoff, checkpoint }, input.now);
        return { kind: "created", handoff, checkpoint };
      });
    },

    async getHandoff(subjectId, handoffId, now) {
      return write((sink) => {
        const row = handoffRow(subjectId, handoffId);
        if (row === undefined) return undefined;
        if (row.state === "offered" && row.expires_at <= now.getTime()) return expireHandoff(sink, row, now);
        return toHandoff(row);
      });
    },

    async resolveHandoff(input: ResolveHandoffInput): Promise<ResolveHandoffResult> {
      return write((sink): ResolveHandoffResult => {
        const row = handoffRow(input.subjectId, input.handoffId);
        if (row === undefined) return { kind: "not-found" };
        if (row.state === "offered" && row.expires_at <= input.now.getTime()) {
          return { kind: "already-resolved", handoff: expireHandoff(sink, row, input.now) };
        }
        if (row.state !== "offered") {
          // The device that resolved it, asking again for the same outcome, gets that outcome
          // back unchanged (HANDOFF-008): its first response may have been lost, and a retry
          // must not look like losing the race. Everyone else learns it was resolved.
          if (row.resolved_by === input.deviceId && row.state === input.resolution) {
            const checkpoint = input.resolution === "accepted" ? readCheckpoint(input.subjectId, row.checkpoint_id) : undefined;
            return { kind: "resolved", handoff: toHandoff(row), checkpoint };
          }
          return { kind: "already-resolved", handoff: toHandoff(row) };
        }
        if (row.source_device === input.deviceId) return { kind: "not-eligible" };
        if (row.target_device !== null && row.target_device !== input.deviceId) return { kind: "not-eligible" };
        const resolved: HandoffRow = {
          ...row,
          state: input.resolution,
          resolved_by: input.deviceId,
          resolved_at: input.now.getTime(),
        };
        stmt(
          "UPDATE handoffs SET state = ?, resolved_by = ?, resolved_at = ? WHERE subject_id = ? AND handoff_id = ?",
        ).run(resolved.state, resolved.resolved_by, resolved.resolved_at, input.subjectId, input.handoffId);
        const handoff = toHandoff(resolved);
        logEvent(sink, input.subjectId, { kind: "handoff-resolved", handoff }, input.now);
        const checkpoint = input.resolution === "accepted" ? readCheckpoint(input.subjectId, row.checkpoint_id) : undefined;
        return { kind: "resolved", handoff, checkpoint };
      });
    },

    async expireHandoffs(now) {
      return write((sink) => {
        const rows = stmt("SELECT * FROM handoffs WHERE state = 'offered' AND expires_at <= ?").all(now.getTime()) as HandoffRow[];
        for (const row of rows) expireHandoff(sink, row, now);
        return rows.length;
      });
    },

    // --- event log ---

    async getEventBounds(subjectId): Promise<EventBounds> {
      const row = stmt("SELECT event_seq, event_horizon FROM subjects WHERE subject_id = ?").get(subjectId) as
        | { event_seq: number; event_horizon: number }
        | undefined;
      return row === undefined ? { horizon: 0, head: 0 } : { horizon: row.event_horizon, head: row.event_seq };
    },

    async readEvents(subjectId, afterSequence, limit) {
      // Payloads kept in chunks are read after the transaction, a chunk per statement.
      const unread: { index: number; stream: StreamRow; rows: DeltaRow[] }[] = [];
      const events = db.transaction(() => {
        const rows = stmt(
          `SELECT seq, committed_at, body, batch_stream, batch_first, batch_count FROM subject_events WHERE subject_key = ${SUBJECT_KEY} AND seq > ? ORDER BY seq LIMIT ?`,
        ).all(subjectId, afterSequence, limit) as {
          seq: number;
          committed_at: number;
          body: string;
          batch_stream: string | null;
          batch_first: number | null;
          batch_count: number | null;
        }[];
        const batchDeltas = (index: number, stream: StreamRow, firstVersion: number, count: number): DeltaRecord[] => {
          const rows = deltaRowsBetween(stream, firstVersion - 1, firstVersion + count - 1, count);
          if (rows.some((d) => d.payload_id !== null)) unread.push({ index, stream, rows });
          return linkedDeltas(stream, rows);
        };
        return rows.map((r, index): SubjectEvent => {
          if (r.batch_stream !== null) {
            const stream = stmt(`SELECT ${STREAM_COLUMNS}, created_seq FROM streams WHERE subject_id = ? AND stream_id = ?`).get(subjectId, r.batch_stream) as
              | (StreamRow & { created_seq: number })
              | undefined;
            const firstVersion = r.batch_first!;
            const count = r.batch_count!;
            // Logged before this incarnation of the id was created: its stream is gone.
            const current = stream !== undefined && r.seq > stream.created_seq ? stream : undefined;
            const deltas = current === undefined ? [] : batchDeltas(index, current, firstVersion, count);
            const ref =
              current === undefined
                ? { id: r.batch_stream, uid: "", type: "", ownerPlatformId: "" }
                : { id: current.stream_id, uid: current.uid, type: current.type, ownerPlatformId: current.owner_platform };
            // A horizon inside the batch leaves only its tail: the batch is gone as a unit.
            const body: SubjectEventBody = { kind: "deltas-appended", stream: ref, firstVersion, count, deltas: deltas.length === count ? deltas : [] };
            return { subjectId, sequence: r.seq, committedAt: new Date(r.committed_at), body };
          }
          let body = decodeEventBody(r.body);
          if (body.kind === "deltas-appended") {
            const stream = streamRow(subjectId, body.stream.id);
            const deltas =
              stream === undefined || stream.uid !== body.stream.uid
                ? []
                : batchDeltas(index, stream, body.firstVersion, body.count);
            // A horizon inside the batch leaves only its tail: the batch is gone as a unit.
            body = { ...body, deltas: deltas.length === body.count ? deltas : [] };
          } else if (body.kind === "handoff-offered" || body.kind === "handoff-resolved") {
            body = withCheckpointStreams(subjectId, body);
          }
          return { subjectId, sequence: r.seq, committedAt: new Date(r.committed_at), body };
        });
      })();
      for (const { index, stream, rows } of unread) {
        const event = events[index]!;
        if (event.body.kind !== "deltas-appended" || event.body.deltas.length === 0) continue;
        const deltas = await withPayloads(stream, event.body.deltas, rows);
        // Deleted since the transaction (a compaction or the stream's deletion): gone as a unit.
        events[index] = { ...event, body: { ...event.body, deltas: deltas ?? [] } };
      }
      return events;
    },

    async findCompactedBatches(subjectId, afterSequence) {
      // The log stores no payloads, only each batch's stream and range, so one pass over the
      // backlog joined with the streams' horizons decides it without loading any delta.
      // Batch events of streams that are gone keep a JSON body (migration 6) and match none.
      const rows = stmt(
        `SELECT DISTINCT s.stream_id, s.uid, s.type, s.owner_platform, s.horizon_version
         FROM subject_events e
         JOIN streams s ON s.subject_id = ? AND s.stream_id = e.batch_stream
         WHERE e.subject_key = ${SUBJECT_KEY} AND e.seq > ?
           AND e.seq > s.created_seq
           AND e.batch_first <= s.horizon_version`,
      ).all(subjectId, subjectId, afterSequence) as {
        stream_id: string;
        uid: string;
        type: string;
        owner_platform: string;
        horizon_version: number;
      }[];
      return rows.map((r) => ({
        stream: { id: r.stream_id, uid: r.uid, type: r.type, ownerPlatformId: r.owner_platform },
        horizonVersion: r.horizon_version,
      }));
    },

    async pruneEvents(keep) {
      return write(() => {
        const subjects = stmt("SELECT subject_id, event_seq, event_horizon FROM subjects WHERE event_seq - event_horizon > ?").all(
          keep,
        ) as { subject_id: string; event_seq: number; event_horizon: number }[];
        let removed = 0;
        for (const s of subjects) {
          const horizon = s.event_seq - keep;
          removed += stmt(`DELETE FROM subject_events WHERE subject_key = ${SUBJECT_KEY} AND seq <= ?`).run(s.subject_id, horizon).changes;
          stmt("UPDATE subjects SET event_horizon = ? WHERE subject_id = ?").run(horizon, s.subject_id);
        }
        return removed;
      });
    },
  };

  function checkpointEntries(subjectId: string, checkpointId: string): CheckpointEntryRow[] {
    return stmt(
      "SELECT stream_id, stream_uid, stream_type, owner_platform, version, head_hash FROM checkpoint_entries WHERE subject_id = ? AND checkpoint_id = ? ORDER BY idx",
    ).all(subjectId, checkpointId) as CheckpointEntryRow[];
  }

  function readCheckpoint(subjectId: string, checkpointId: string): CheckpointRecord | undefined {
    const row = stmt("SELECT * FROM checkpoints WHERE subject_id = ? AND checkpoint_id = ?").get(subjectId, checkpointId) as
      | CheckpointRow
      | undefined;
    return row === undefined ? undefined : toCheckpoint(row, checkpointEntries(subjectId, checkpointId));
  }

  /**
   * Events logged before handoffs recorded their checkpoint's streams lack them: take them
   * from the handoff row, which migration 2 filled in.
   */
  function withCheckpointStreams<B extends Extract<SubjectEventBody, { handoff: HandoffRecord }>>(subjectId: string, body: B): B {
    if (Array.isArray(body.handoff.checkpointStreams)) return body;
    const row = handoffRow(subjectId, body.handoff.id);
    const checkpointStreams = row === undefined ? [] : decodeCheckpointStreams(row.checkpoint_streams);
    return { ...body, handoff: { ...body.handoff, checkpointStreams } };
  }

  function handoffRow(subjectId: string, handoffId: string): HandoffRow | undefined {
    return stmt("SELECT * FROM handoffs WHERE subject_id = ? AND handoff_id = ?").get(subjectId, handoffId) as
      | HandoffRow
      | undefined;
  }

  function expireHandoff(sink: EventSink, row: HandoffRow, now: Date): HandoffRecord {
    stmt("UPDATE handoffs SET state = 'expired', resolved_at = ? WHERE subject_id = ? AND handoff_id = ?").run(
      now.getTime(),
      row.subject_id,
      row.handoff_id,
    );
    const handoff = toHandoff({ ...row, state: "expired", resolved_at: now.getTime() });
    logEvent(sink, row.subject_id, { kind: "handoff-resolved", handoff }, now);
    return handoff;
  }

  // Erasures a stop cut short: the subject is made unreachable again at once (a stop between
  // detach's two transactions left its row), and its rows are deleted in the background.
  const unfinished = erasure.unfinished();
  for (const subjectId of unfinished) erasure.detach(subjectId);
  if (unfinished.length > 0) {
    void (async () => {
      for (const subjectId of unfinished) if (!(await removeErasedRows(subjectId))) return;
      if (!tryScrubWal()) scheduleScrub();
    })().catch((error: unknown) => options.onListenerError?.(error));
  }
  // Deleted streams whose rows a stop left: removed in the background; a stream created
  // with one of their ids meanwhile waits for it (erasure.streamPurged).
  for (const [subjectId, streamId] of erasure.unfinishedStreams()) {
    void erasure.streamPurged(subjectId, streamId).catch((error: unknown) => options.onListenerError?.(error));
  }

  return Object.assign(
    store,
    createSqliteReplicaState({ stmt, write, notify }),
    createSqlitePortability({
      db,
      stmt,
      write,
      notify,
      logEvent,
      nextOrd,
      streamRow,
      stateLag,
      addStateLag,
      subjectExists,
      checkpointEntries,
      eraseSubject: (subjectId) => store.eraseSubject(subjectId),
      createWhenPurged: (subjectId, streamId, create) => erasure.createWhenPurged(subjectId, streamId, create),
      purgePending: (subjectId, streamId) => erasure.purgePending(subjectId, streamId),
      insertStream,
      linkedDeltas: linkedDeltasWhole,
      streamColumns: STREAM_COLUMNS,
    }),
  );
}

function ordAfter(page: PageRequest): number {
  if (page.after === undefined) return 0;
  const n = Number(page.after);
  return Number.isSafeInteger(n) ? n : Number.MAX_SAFE_INTEGER;
}

function pageOf<R, T>(rows: R[], limit: number, keyOf: (row: R) => string, map: (row: R) => T): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  const last = kept[kept.length - 1];
  return { items: kept.map(map), nextAfter: more && last !== undefined ? keyOf(last) : undefined };
}

function visibilityClause(visibility: StreamVisibility): { clause: string; params: unknown[] } {
  const parts = ["owner_platform = ?"];
  const params: unknown[] = [visibility.platformId];
  for (const shared of visibility.shared) {
    if (shared.streamType === "*") {
      parts.push("owner_platform = ?");
      params.push(shared.ownerPlatformId);
    } else {
      parts.push("(owner_platform = ? AND type = ?)");
      params.push(shared.ownerPlatformId, shared.streamType);
    }
  }
  return { clause: `(${parts.join(" OR ")})`, params };
}
