import type { Database, Statement } from "better-sqlite3";
import { yieldTurn } from "../state-chunks.js";

/**
 * Erasure on SQLite in two parts, so that erasing a subject whose streams hold tens of
 * megabytes never holds the event loop (LIMIT-022) while ERASE-004 still holds when
 * DeleteSubject returns.
 *
 * With `secure_delete` every freed page is overwritten, so deleting a stream's deltas and
 * state chunks costs what writing them did: one cascading DELETE of a subject with a ~60 MiB
 * state held every other call for seconds. Instead:
 *
 * 1. {@link SqliteErasure.detach}, two small transactions: the subject's stream rows are
 *    deleted with foreign keys off (their deltas, states, chunks, snapshots and client
 *    outcomes stay, named by no stream), then the subject row is deleted with foreign keys on,
 *    which cascades to everything small (links, devices, grants, link codes, checkpoints,
 *    handoffs, events). From then on the subject answers as erased, exactly as before.
 *    The first transaction also records the erasure in `meta`, so that a stop before the
 *    rows are gone is finished when the store opens again.
 * 2. {@link SqliteErasure.removeRows}: those rows are deleted a few per statement (a chunk of
 *    a stored state, or 16 deltas), with a turn of the event loop between; the record is
 *    deleted with the last of them.
 *
 * Subject ids are random and never reused, so rows that wait for step 2 meet no new subject.
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
}

/** The `meta` key prefix that records an erasure whose rows are not all deleted yet. */
const ERASURE_KEY_PREFIX = "erasure_pending:";

/**
 * Rows deleted per statement: about 1 MiB of stored state (one chunk), or 16 deltas and
 * uploaded snapshot chunks of 64 KiB; other rows are small.
 */
const ROWS_PER_STATEMENT: Readonly<Record<string, number>> = { json_state_chunks: 1, deltas: 16, snapshot_chunks: 16 };
const SMALL_ROWS_PER_STATEMENT = 256;

export function createSqliteErasure(
  db: Database,
  stmt: (sql: string) => Statement,
  write: <T>(fn: () => T) => T,
  isClosed: () => boolean,
): SqliteErasure {
  const steps = stepStatements(db);
  const key = (subjectId: string): string => `${ERASURE_KEY_PREFIX}${subjectId}`;

  return {
    detach(subjectId) {
      // Foreign keys can be switched only outside a transaction; better-sqlite3 runs this
      // whole function synchronously, so no other statement of this connection runs between.
      db.pragma("foreign_keys = OFF");
      let found: boolean;
      try {
        found = write(() => {
          if (stmt("SELECT 1 FROM subjects WHERE subject_id = ?").get(subjectId) === undefined) return false;
          stmt("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").run(key(subjectId), Buffer.from("1"));
          stmt("DELETE FROM streams WHERE subject_id = ?").run(subjectId);
          return true;
        });
      } finally {
        db.pragma("foreign_keys = ON");
      }
      if (found) write(() => stmt("DELETE FROM subjects WHERE subject_id = ?").run(subjectId));
      return found;
    },

    async removeRows(subjectId) {
      for (const step of steps) {
        for (;;) {
          if (isClosed()) return false;
          const more = step.run(subjectId).changes > 0;
          await yieldTurn();
          if (!more) break;
        }
      }
      if (isClosed()) return false;
      stmt("DELETE FROM meta WHERE key = ?").run(key(subjectId));
      return true;
    },

    unfinished() {
      const rows = stmt("SELECT key FROM meta WHERE key >= ? AND key < ?").all(ERASURE_KEY_PREFIX, `${ERASURE_KEY_PREFIX}\uffff`) as { key: string }[];
      return rows.map((r) => r.key.slice(ERASURE_KEY_PREFIX.length));
    },
  };
}

/**
 * One bounded DELETE per table that hangs off `streams` (directly or through another such
 * table), read from the schema so that a table added later is not forgotten; tables further
 * from `streams` first, so that no statement cascades to more rows than its own.
 */
function stepStatements(db: Database): Statement[] {
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
      const key = (db.pragma(`table_info(${table})`) as { name: string; pk: number }[])
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name)
        .join(", ");
      const limit = ROWS_PER_STATEMENT[table] ?? SMALL_ROWS_PER_STATEMENT;
      return db.prepare(`DELETE FROM ${table} WHERE (${key}) IN (SELECT ${key} FROM ${table} WHERE subject_id = ? LIMIT ${limit})`);
    });
}
