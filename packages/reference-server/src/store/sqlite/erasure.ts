import type { Database, Statement } from "better-sqlite3";
import type { SubjectEvent } from "../types.js";
import { yieldTurn } from "../state-chunks.js";
import { STREAM_KEY_OF } from "./migrations.js";

/**
 * Erasure of a subject (DeleteSubject), and deletion of one stream (DeleteStream), on SQLite
 * in two parts, so that removing tens of megabytes never holds the event loop (LIMIT-022)
 * while ERASE-004 (and, for a stream, that nothing of it is left once the call returns) still
 * holds when the call returns.
 *
 * With `secure_delete` every freed page is overwritten, so deleting a stream's deltas and
 * state chunks costs what writing them did: one cascading DELETE of a ~60 MiB state held every
 * other call for about a second. Instead:
 *
 * 1. Detach. {@link SqliteErasure.detach}, two small transactions: the subject's stream rows
 *    are deleted with foreign keys off (their deltas, states, chunks, snapshots and client
 *    outcomes stay, named by no stream), then the subject row is deleted with foreign keys on,
 *    which cascades to everything small (links, devices, grants, link codes, checkpoints,
 *    handoffs, events). {@link SqliteErasure.detachStream}, one transaction: the stream row is
 *    deleted with foreign keys off, beside the caller's work (the `stream-deleted` event).
 *    From then on the subject, or the stream, answers as gone, exactly as before. The first
 *    transaction also records the work in `meta`, so that a stop before the rows are gone is
 *    finished when the store opens again.
 * 2. Remove the rows: a few per statement (a chunk of a stored state, or 16 deltas), with a
 *    turn of the event loop between; the record is deleted with the last of them.
 *
 * Subject ids are random and never reused, so rows that wait for step 2 meet no new subject.
 * Stream ids are reused: a stream created with the id of one whose rows are still being
 * removed would take those rows as its own (they are keyed by subject, stream id and version,
 * or by the stream's key in `stream_keys`, which is unique per subject and stream id and goes
 * last). So every creation of a stream row goes through {@link SqliteErasure.createWhenPurged}:
 * it waits for {@link SqliteErasure.streamPurged}, which also finishes, there and then, a
 * removal a stop cut short, and again for a deletion that began meanwhile.
 */
export interface SqliteErasure {
  /** Makes the subject unreachable (step 1); false when there is no such subject. */
  detach(subjectId: string): boolean;
  /**
   * Deletes the rows detach left (step 2), in steps. True once they are all gone; false when
   * the store closed first (the record stays, and the next open finishes the work).
   */
  removeRows(subjectId: string): Promise<boolean>;
  /** Subjects whose erasure a stop cut short (recorded, rows maybe left). */
  unfinished(): string[];
  /**
   * Deletes the stream row (step 1) in one transaction with `alongside`, which reads the
   * stream and logs its deletion; undefined, and nothing done, when `alongside` finds no
   * stream. Step 2 starts at once; {@link streamPurged} tells when it is done.
   */
  detachStream<T>(subjectId: string, streamId: string, alongside: (sink: SubjectEvent[]) => T | undefined): T | undefined;
  /**
   * Resolves once no row of a deleted stream of this id is left, starting the removal if a
   * stop cut it short; at once when there is none. False when the store closed first.
   */
  streamPurged(subjectId: string, streamId: string): Promise<boolean>;
  /**
   * Creates a stream of this id once no row of a deleted one is left: waits for
   * {@link streamPurged}, then runs `create` (a transaction), which answers undefined when it
   * finds {@link purgePending} (a deletion of the id began while this waited); then it waits
   * again. Throws when the store closed first.
   */
  createWhenPurged<T>(subjectId: string, streamId: string, create: () => T | undefined): Promise<T>;
  /** Inside a transaction: whether rows of a deleted stream of this id are still being removed (its `stream_keys` row goes last). */
  purgePending(subjectId: string, streamId: string): boolean;
  /** Streams whose removal a stop cut short, as [subject id, stream id]. */
  unfinishedStreams(): [string, string][];
}

/** The `meta` key prefix that records an erasure whose rows are not all deleted yet. */
const ERASURE_KEY_PREFIX = "erasure_pending:";
/** The same for a deleted stream: the prefix, then `JSON.stringify([subjectId, streamId])`. */
const STREAM_PURGE_KEY_PREFIX = "stream_purge_pending:";

/**
 * Rows deleted per statement: about 1 MiB of stored state (one chunk), or 16 deltas and
 * uploaded snapshot chunks of 64 KiB; other rows are small.
 */
const ROWS_PER_STATEMENT: Readonly<Record<string, number>> = { json_state_chunks: 1, deltas: 16, snapshot_chunks: 16 };
const SMALL_ROWS_PER_STATEMENT = 256;

export function createSqliteErasure(
  db: Database,
  stmt: (sql: string) => Statement,
  /** Runs `fn` in a transaction; with `withoutForeignKeys`, with foreign keys off during it. */
  write: <T>(fn: (sink: SubjectEvent[]) => T, withoutForeignKeys?: boolean) => T,
  isClosed: () => boolean,
): SqliteErasure {
  const subjectSteps = stepStatements(db, "subject_id = ?");
  const streamSteps = stepStatements(db, "subject_id = ? AND stream_id = ?");
  const key = (subjectId: string): string => `${ERASURE_KEY_PREFIX}${subjectId}`;
  const streamKey = (subjectId: string, streamId: string): string => `${STREAM_PURGE_KEY_PREFIX}${JSON.stringify([subjectId, streamId])}`;
  const keysFrom = (prefix: string): string[] =>
    (stmt("SELECT key FROM meta WHERE key >= ? AND key < ?").all(prefix, `${prefix}\uffff`) as { key: string }[]).map((r) => r.key.slice(prefix.length));
  const record = (k: string): void => void stmt("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(k, Buffer.from("1"));

  /** Runs the steps until they delete nothing; then deletes the records. False when the store closed first. */
  const removeWhere = async (steps: readonly Statement[], params: readonly string[], done: () => void): Promise<boolean> => {
    for (const step of steps) {
      for (;;) {
        if (isClosed()) return false;
        const more = step.run(...params).changes > 0;
        await yieldTurn();
        if (!more) break;
      }
    }
    if (isClosed()) return false;
    done();
    return true;
  };

  /** The stream removals running, by record key: one at a time per stream id. */
  const purges = new Map<string, Promise<boolean>>();
  const purge = (subjectId: string, streamId: string): Promise<boolean> => {
    const k = streamKey(subjectId, streamId);
    let running = purges.get(k);
    if (running === undefined) {
      running = removeWhere(streamSteps, [subjectId, streamId], () => stmt("DELETE FROM meta WHERE key = ?").run(k)).finally(() => purges.delete(k));
      purges.set(k, running);
    }
    return running;
  };

  const streamPurged = async (subjectId: string, streamId: string): Promise<boolean> => {
    const k = streamKey(subjectId, streamId);
    for (;;) {
      const recorded = purges.has(k) || stmt("SELECT 1 FROM meta WHERE key = ?").get(k) !== undefined;
      if (!recorded) return true;
      if (!(await purge(subjectId, streamId))) return false;
    }
  };

  return {
    detach(subjectId) {
      const found = write(() => {
        if (stmt("SELECT 1 FROM subjects WHERE subject_id = ?").get(subjectId) === undefined) return false;
        record(key(subjectId));
        stmt("DELETE FROM streams WHERE subject_id = ?").run(subjectId);
        return true;
      }, true);
      if (found) write(() => stmt("DELETE FROM subjects WHERE subject_id = ?").run(subjectId));
      return found;
    },

    removeRows(subjectId) {
      // The subject's streams' rows go with it, so their own records are done too.
      const streams = `${STREAM_PURGE_KEY_PREFIX}${JSON.stringify([subjectId]).slice(0, -1)},`;
      return removeWhere(subjectSteps, [subjectId], () =>
        stmt("DELETE FROM meta WHERE key = ? OR (key >= ? AND key < ?)").run(key(subjectId), streams, `${streams}\uffff`),
      );
    },

    unfinished() {
      return keysFrom(ERASURE_KEY_PREFIX);
    },

    detachStream(subjectId, streamId, alongside) {
      const value = write((sink) => {
        const result = alongside(sink);
        if (result === undefined) return undefined;
        record(streamKey(subjectId, streamId));
        stmt("DELETE FROM streams WHERE subject_id = ? AND stream_id = ?").run(subjectId, streamId);
        return result;
      }, true);
      // Started here, so that the rows go even when nobody waits for them.
      if (value !== undefined) void purge(subjectId, streamId).catch(() => undefined);
      return value;
    },

    streamPurged,

    async createWhenPurged(subjectId, streamId, create) {
      for (;;) {
        if (!(await streamPurged(subjectId, streamId))) throw new Error("store is closed");
        const created = create();
        if (created !== undefined) return created;
      }
    },

    purgePending(subjectId, streamId) {
      return stmt(STREAM_KEY_OF).get(subjectId, streamId) !== undefined;
    },

    unfinishedStreams() {
      return keysFrom(STREAM_PURGE_KEY_PREFIX).map((k) => JSON.parse(k) as [string, string]);
    },
  };
}

/**
 * One bounded DELETE per table that hangs off `streams` (directly or through another such
 * table), read from the schema so that a table added later is not forgotten; tables further
 * from `streams` first, so that no statement cascades to more rows than its own. Every such
 * table carries `subject_id` and `stream_id`, which `filter` compares, or a `stream_key`, found
 * through `stream_keys` by the same filter (`deltas`, migration 10: `stream_keys` goes after the
 * tables keyed through it, being nearer to `streams`).
 */
function stepStatements(db: Database, filter: string): Statement[] {
  const tables = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]).map((t) => t.name);
  const parents = new Map(tables.map((t) => [t, (db.pragma(`foreign_key_list(${t})`) as { table: string }[]).map((fk) => fk.table)]));
  const depth = new Map<string, number>([["streams", 0]]);
  for (let changed = true; changed; ) {
    changed = false;
    for (const [table, refs] of parents) {
      for (const parent of refs) {
        const d = depth.get(parent);
        if (d !== undefined && table !== "streams" && d < tables.length && (depth.get(table) ?? -1) < d + 1) {
          depth.set(table, d + 1);
          changed = true;
        }
      }
    }
  }
  depth.delete("streams");
  return [...depth.entries()]
    .sort(([a, da], [b, db_]) => db_ - da || a.localeCompare(b))
    .map(([table]) => {
      const columns = db.pragma(`table_info(${table})`) as { name: string; pk: number }[];
      const key = columns
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name)
        .join(", ");
      const has = (name: string): boolean => columns.some((c) => c.name === name);
      let where: string;
      if (has("subject_id")) where = filter;
      else if (has("stream_key")) where = `stream_key IN (SELECT stream_key FROM stream_keys WHERE ${filter})`;
      else throw new Error(`${table} hangs off streams but names no stream`);
      const limit = ROWS_PER_STATEMENT[table] ?? SMALL_ROWS_PER_STATEMENT;
      return db.prepare(`DELETE FROM ${table} WHERE (${key}) IN (SELECT ${key} FROM ${table} WHERE ${where} LIMIT ${limit})`);
    });
}
