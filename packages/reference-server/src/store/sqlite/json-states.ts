import { randomUUID } from "node:crypto";
import type { Statement } from "better-sqlite3";
import { chunksOf, readChunked, yieldTurn, type StagedState, type StoredStateRef } from "../state-chunks.js";
import { STREAM_KEY } from "./migrations.js";

/**
 * Stored JSON states on SQLite, in chunk rows (the rule: `store/state-chunks.ts`). better-sqlite3
 * runs each statement on the event loop, so a state is written and read one chunk statement at a
 * time (autocommit) with a turn between, and made visible by one small row in a transaction.
 * Large delta payloads use the same chunk rows, named by their `deltas` row (`payload_id`)
 * instead of a `json_states` row; a chunk is garbage only when neither names it.
 */

export interface SqliteJsonStates {
  /** Inside a transaction: stores a state (chunks and row) in that transaction. For small states and imports. */
  insertWhole(subjectId: string, streamId: string, version: number, state: Uint8Array, now: number): void;
  /** Outside any transaction: writes the chunks of a state, one statement each; throws if the stream is gone. */
  stage(subjectId: string, streamId: string, state: Uint8Array, now: number): Promise<StagedState>;
  /**
   * Inside a transaction: names a staged state as the state at `version`. Without `replace`,
   * false when a state is stored there already (the staged one is then garbage); with it, the
   * ids of the states it replaced.
   */
  publish(subjectId: string, streamId: string, version: number, staged: StagedState, replace: boolean): { published: boolean; replaced: string[] };
  /** Inside a transaction: deletes the rows of the states below `version`; returns their ids. */
  releaseBelow(subjectId: string, streamId: string, version: number): string[];
  /** The newest stored state at or below `version`. */
  newestAtOrBelow(subjectId: string, streamId: string, version: number): StoredStateRef | undefined;
  /** Reads a stored state (or delta payload) chunk by chunk; undefined when it was let go of meanwhile. */
  read(subjectId: string, streamId: string, ref: StoredStateRef): Promise<Buffer | undefined>;
  /** Reads a stored delta payload's chunks in one go, inside a transaction (imports only). */
  readNow(subjectId: string, streamId: string, ref: StoredStateRef): Buffer | undefined;
  /** Deletes the chunks of states no row names any more, in the background, a chunk per statement. */
  drop(subjectId: string, streamId: string, stateIds: readonly string[]): void;
  /**
   * Deletes in the background, a few rows per statement, the deltas at or below the stream's
   * horizon: a compaction moves the horizon in its transaction and leaves them to this (every
   * read of deltas starts above the horizon).
   */
  trimDeltas(subjectId: string, streamId: string): void;
  /**
   * Deletes in the background what a stop left behind: chunks no row names that were written
   * before `before` (a crash's leftovers), and deltas a compaction had yet to delete.
   */
  sweepOrphans(before: number): void;
  /** Resolves when no background deletion is running. */
  idle(): Promise<void>;
}

/** Deltas deleted per statement after a compaction: 16 × max_delta_bytes at most. */
const TRIM_DELTAS_PER_STATEMENT = 16;

export function createSqliteJsonStates(stmt: (sql: string) => Statement, isClosed: () => boolean, onError: (error: unknown) => void): SqliteJsonStates {
  const insertChunk = (subjectId: string, streamId: string, stateId: string, idx: number, data: Uint8Array, now: number): void => {
    stmt("INSERT INTO json_state_chunks (subject_id, stream_id, state_id, idx, data, written_at) VALUES (?, ?, ?, ?, ?, ?)").run(
      subjectId,
      streamId,
      stateId,
      idx,
      data,
      now,
    );
  };
  const insertRow = (subjectId: string, streamId: string, version: number, staged: StagedState, verb: string): boolean =>
    stmt(`${verb} INTO json_states (subject_id, stream_id, version, state, state_id, chunks, size_bytes) VALUES (?, ?, ?, X'', ?, ?, ?)`).run(
      subjectId,
      streamId,
      version,
      staged.stateId,
      staged.chunks,
      staged.sizeBytes,
    ).changes > 0;
  const readChunk = (subjectId: string, streamId: string, stateId: string, idx: number): Buffer | undefined =>
    (
      stmt("SELECT data FROM json_state_chunks WHERE subject_id = ? AND stream_id = ? AND state_id = ? AND idx = ?").get(subjectId, streamId, stateId, idx) as
        | { data: Buffer }
        | undefined
    )?.data;
  const stateIdsAt = (subjectId: string, streamId: string, compare: "=" | "<", version: number): string[] =>
    (
      stmt(`SELECT state_id FROM json_states WHERE subject_id = ? AND stream_id = ? AND version ${compare} ?`).all(subjectId, streamId, version) as {
        state_id: string;
      }[]
    ).map((r) => r.state_id);

  // Background deletions, one statement per turn. secure_delete overwrites what it frees, so
  // deleting a state's worth of rows in one statement would cost as much as writing it.
  /** Each deletes a little and answers whether there may be more. */
  const pending: (() => boolean)[] = [];
  let worker: Promise<void> | undefined;
  const isNamed = (subjectId: string, streamId: string, stateId: string): boolean =>
    stmt("SELECT 1 FROM json_states WHERE subject_id = ? AND stream_id = ? AND state_id = ?").get(subjectId, streamId, stateId) !== undefined ||
    stmt(`SELECT 1 FROM deltas WHERE stream_key = ${STREAM_KEY} AND payload_id = ?`).get(subjectId, streamId, stateId) !== undefined;
  const work = async (): Promise<void> => {
    while (pending.length > 0 && !isClosed()) {
      const step = pending[0]!;
      let more = false;
      try {
        more = step();
      } catch (error) {
        // Left for the sweep at the next open; the store goes on.
        onError(error);
      }
      if (!more) pending.shift();
      await yieldTurn();
    }
    worker = undefined;
  };
  const schedule = (step: () => boolean): void => {
    pending.push(step);
    worker ??= yieldTurn().then(work);
  };
  const dropOne = (subjectId: string, streamId: string, stateId: string): void =>
    schedule(
      () =>
        !isNamed(subjectId, streamId, stateId) &&
        stmt(
          "DELETE FROM json_state_chunks WHERE rowid = (SELECT rowid FROM json_state_chunks WHERE subject_id = ? AND stream_id = ? AND state_id = ? LIMIT 1)",
        ).run(subjectId, streamId, stateId).changes > 0,
    );
  const trimOne = (subjectId: string, streamId: string): void =>
    schedule(() => {
      const trimmed = stmt(
        `SELECT version, payload_id FROM deltas WHERE stream_key = ${STREAM_KEY}
           AND version <= (SELECT horizon_version FROM streams WHERE subject_id = ? AND stream_id = ?)
         ORDER BY version LIMIT ${TRIM_DELTAS_PER_STATEMENT}`,
      ).all(subjectId, streamId, subjectId, streamId) as { version: number; payload_id: string | null }[];
      if (trimmed.length === 0) return false;
      stmt(`DELETE FROM deltas WHERE stream_key = ${STREAM_KEY} AND version >= ? AND version <= ?`).run(
        subjectId,
        streamId,
        trimmed[0]!.version,
        trimmed[trimmed.length - 1]!.version,
      );
      // The payloads these deltas kept in chunks are named by nothing now.
      for (const t of trimmed) if (t.payload_id !== null) dropOne(subjectId, streamId, t.payload_id);
      return true;
    });

  return {
    insertWhole(subjectId, streamId, version, state, now) {
      const chunks = chunksOf(state);
      const staged: StagedState = { stateId: randomUUID(), chunks: chunks.length, sizeBytes: state.length };
      chunks.forEach((chunk, idx) => insertChunk(subjectId, streamId, staged.stateId, idx, chunk, now));
      insertRow(subjectId, streamId, version, staged, "INSERT");
    },

    async stage(subjectId, streamId, state, now) {
      const chunks = chunksOf(state);
      const stateId = randomUUID();
      try {
        for (const [idx, chunk] of chunks.entries()) {
          if (idx > 0) await yieldTurn();
          if (isClosed()) throw new Error("store is closed");
          insertChunk(subjectId, streamId, stateId, idx, chunk, now);
        }
      } catch (error) {
        if (!isClosed()) this.drop(subjectId, streamId, [stateId]);
        throw error;
      }
      return { stateId, chunks: chunks.length, sizeBytes: state.length };
    },

    publish(subjectId, streamId, version, staged, replace) {
      const replaced = replace ? stateIdsAt(subjectId, streamId, "=", version) : [];
      const published = insertRow(subjectId, streamId, version, staged, replace ? "INSERT OR REPLACE" : "INSERT OR IGNORE");
      return { published, replaced };
    },

    releaseBelow(subjectId, streamId, version) {
      const released = stateIdsAt(subjectId, streamId, "<", version);
      stmt("DELETE FROM json_states WHERE subject_id = ? AND stream_id = ? AND version < ?").run(subjectId, streamId, version);
      return released;
    },

    newestAtOrBelow(subjectId, streamId, version) {
      const row = stmt(
        "SELECT version, state_id, chunks, size_bytes FROM json_states WHERE subject_id = ? AND stream_id = ? AND version <= ? ORDER BY version DESC LIMIT 1",
      ).get(subjectId, streamId, version) as { version: number; state_id: string; chunks: number; size_bytes: number } | undefined;
      return row === undefined ? undefined : { version: row.version, stateId: row.state_id, chunks: row.chunks, sizeBytes: row.size_bytes };
    },

    read(subjectId, streamId, ref) {
      return readChunked(ref.chunks, ref.sizeBytes, (idx) => {
        if (isClosed()) throw new Error("store is closed");
        return readChunk(subjectId, streamId, ref.stateId, idx);
      });
    },

    readNow(subjectId, streamId, ref) {
      const parts: Buffer[] = [];
      for (let idx = 0; idx < ref.chunks; idx++) {
        const chunk = readChunk(subjectId, streamId, ref.stateId, idx);
        if (chunk === undefined) return undefined;
        parts.push(chunk);
      }
      const whole = Buffer.concat(parts);
      return whole.length === ref.sizeBytes ? whole : undefined;
    },

    drop(subjectId, streamId, stateIds) {
      for (const stateId of stateIds) dropOne(subjectId, streamId, stateId);
    },

    trimDeltas(subjectId, streamId) {
      trimOne(subjectId, streamId);
    },

    sweepOrphans(before) {
      const orphans = stmt(
        `SELECT DISTINCT subject_id, stream_id, state_id FROM json_state_chunks c
         WHERE written_at < ? AND NOT EXISTS (SELECT 1 FROM json_states s WHERE s.subject_id = c.subject_id AND s.stream_id = c.stream_id AND s.state_id = c.state_id)
           AND NOT EXISTS (
             SELECT 1 FROM stream_keys k JOIN deltas d ON d.stream_key = k.stream_key
             WHERE k.subject_id = c.subject_id AND k.stream_id = c.stream_id AND d.payload_id = c.state_id
           )`,
      ).all(before) as { subject_id: string; stream_id: string; state_id: string }[];
      for (const o of orphans) dropOne(o.subject_id, o.stream_id, o.state_id);
      // Deltas a compaction left to delete when the server stopped.
      const untrimmed = stmt(
        `SELECT subject_id, stream_id FROM streams s
         WHERE EXISTS (
           SELECT 1 FROM stream_keys k JOIN deltas d ON d.stream_key = k.stream_key
           WHERE k.subject_id = s.subject_id AND k.stream_id = s.stream_id AND d.version <= s.horizon_version
         )`,
      ).all() as { subject_id: string; stream_id: string }[];
      for (const u of untrimmed) trimOne(u.subject_id, u.stream_id);
    },

    async idle() {
      while (worker !== undefined) await worker;
    },
  };
}
