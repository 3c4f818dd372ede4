import { randomUUID } from "node:crypto";
import { chunksOf, ORPHAN_GRACE_MS, readChunked, yieldTurn, type StagedState, type StoredStateRef } from "../state-chunks.js";
import type { Query } from "./connection.js";

/**
 * Stored JSON states on PostgreSQL, in chunk rows (the rule: `store/state-chunks.ts`). pg
 * parses every row on the event loop (a 60 MiB bytea held it for about a second), so a state
 * is written and read one chunk statement at a time, outside any transaction, and made
 * visible by one small row inside the writer's transaction. Large delta payloads use the same
 * chunk rows, named by their `deltas` row (`payload_id`); a chunk is garbage only when
 * neither a state nor a delta names it.
 */

export interface PgJsonStates {
  /** Inside a transaction (`q`): stores a state, chunks and row. For small states and imports. */
  insertWhole(q: Query, subjectId: string, streamId: string, version: number, state: Uint8Array, now: number): Promise<void>;
  /** Outside any transaction: writes the chunks of a state, one statement each; throws if the stream is gone. */
  stage(subjectId: string, streamId: string, state: Uint8Array, now: number): Promise<StagedState>;
  /**
   * Inside a transaction: names a staged state as the state at `version`. Without `replace`,
   * false when a state is stored there already; with it, the ids of the states it replaced.
   */
  publish(q: Query, subjectId: string, streamId: string, version: number, staged: StagedState, replace: boolean): Promise<{ published: boolean; replaced: string[] }>;
  /** Inside a transaction: deletes the rows of the states below `version`; returns their ids. */
  releaseBelow(q: Query, subjectId: string, streamId: string, version: number): Promise<string[]>;
  /** The newest stored state at or below `version`. */
  newestAtOrBelow(q: Query, subjectId: string, streamId: string, version: number): Promise<StoredStateRef | undefined>;
  /** Reads a stored state chunk by chunk; undefined when it was let go of meanwhile. */
  read(subjectId: string, streamId: string, ref: StoredStateRef): Promise<Buffer | undefined>;
  /** Deletes the chunks of states no row names any more, in the background, a chunk per statement. */
  drop(subjectId: string, streamId: string, stateIds: readonly string[]): void;
  /**
   * Deletes in the background the chunks no row names that are older than {@link ORPHAN_GRACE_MS}
   * (younger ones may be a write still running on another replica).
   */
  sweepOrphans(): void;
  /** Resolves when no background deletion is running. */
  idle(): Promise<void>;
}

export function createPgJsonStates(query: Query, isClosed: () => boolean, onError: (error: unknown) => void): PgJsonStates {
  const insertChunk = (q: Query, subjectId: string, streamId: string, stateId: string, idx: number, data: Uint8Array, now: number): Promise<unknown> =>
    q("INSERT INTO json_state_chunks (subject_id, stream_id, state_id, idx, written_at, data) VALUES ($1, $2, $3, $4, $5, $6)", [
      subjectId,
      streamId,
      stateId,
      idx,
      now,
      data,
    ]);

  const pending: { subjectId: string; streamId: string; stateId: string }[] = [];
  let worker: Promise<void> | undefined;
  const work = async (): Promise<void> => {
    try {
      while (pending.length > 0 && !isClosed()) {
        const { subjectId, streamId, stateId } = pending[0]!;
        // One chunk per statement, never one a row names (a state published meanwhile).
        const deleted = await query(
          `DELETE FROM json_state_chunks WHERE (subject_id, stream_id, state_id, idx) IN (
             SELECT c.subject_id, c.stream_id, c.state_id, c.idx FROM json_state_chunks c
             WHERE c.subject_id = $1 AND c.stream_id = $2 AND c.state_id = $3
               AND NOT EXISTS (SELECT 1 FROM json_states s WHERE s.subject_id = $1 AND s.stream_id = $2 AND s.state_id = $3)
               AND NOT EXISTS (SELECT 1 FROM deltas d WHERE d.subject_id = $1 AND d.stream_id = $2 AND d.payload_id = $3)
             LIMIT 1) RETURNING idx`,
          [subjectId, streamId, stateId],
        );
        if (deleted.length === 0) pending.shift();
        await yieldTurn();
      }
    } catch (error) {
      // The pool ended (close) or the database is away: what is left is swept at a later open.
      pending.length = 0;
      if (!isClosed()) onError(error);
    } finally {
      worker = undefined;
    }
  };
  const drop = (subjectId: string, streamId: string, stateIds: readonly string[]): void => {
    for (const stateId of stateIds) pending.push({ subjectId, streamId, stateId });
    if (pending.length > 0) worker ??= yieldTurn().then(work);
  };
  const stateIdsAt = async (q: Query, subjectId: string, streamId: string, compare: "=" | "<", version: number): Promise<string[]> =>
    (await q<{ state_id: string }>(`SELECT state_id FROM json_states WHERE subject_id = $1 AND stream_id = $2 AND version ${compare} $3`, [subjectId, streamId, version])).map(
      (r) => r.state_id,
    );
  const insertRow = async (q: Query, subjectId: string, streamId: string, version: number, staged: StagedState, onConflict: string): Promise<boolean> =>
    (
      await q(
        `INSERT INTO json_states (subject_id, stream_id, version, state, state_id, chunks, size_bytes) VALUES ($1, $2, $3, ''::bytea, $4, $5, $6)
         ON CONFLICT (subject_id, stream_id, version) ${onConflict} RETURNING version`,
        [subjectId, streamId, version, staged.stateId, staged.chunks, staged.sizeBytes],
      )
    ).length > 0;

  return {
    async insertWhole(q, subjectId, streamId, version, state, now) {
      const chunks = chunksOf(state);
      const staged: StagedState = { stateId: randomUUID(), chunks: chunks.length, sizeBytes: state.length };
      for (const [idx, chunk] of chunks.entries()) await insertChunk(q, subjectId, streamId, staged.stateId, idx, chunk, now);
      await insertRow(q, subjectId, streamId, version, staged, "DO NOTHING");
    },

    async stage(subjectId, streamId, state, now) {
      const chunks = chunksOf(state);
      const stateId = randomUUID();
      try {
        for (const [idx, chunk] of chunks.entries()) {
          if (isClosed()) throw new Error("store is closed");
          await insertChunk(query, subjectId, streamId, stateId, idx, chunk, now);
        }
      } catch (error) {
        if (!isClosed()) drop(subjectId, streamId, [stateId]);
        throw error;
      }
      return { stateId, chunks: chunks.length, sizeBytes: state.length };
    },

    async publish(q, subjectId, streamId, version, staged, replace) {
      const replaced = replace ? await stateIdsAt(q, subjectId, streamId, "=", version) : [];
      const published = await insertRow(
        q,
        subjectId,
        streamId,
        version,
        staged,
        replace ? "DO UPDATE SET state = EXCLUDED.state, state_id = EXCLUDED.state_id, chunks = EXCLUDED.chunks, size_bytes = EXCLUDED.size_bytes" : "DO NOTHING",
      );
      return { published, replaced };
    },

    async releaseBelow(q, subjectId, streamId, version) {
      return (
        await q<{ state_id: string }>("DELETE FROM json_states WHERE subject_id = $1 AND stream_id = $2 AND version < $3 RETURNING state_id", [subjectId, streamId, version])
      ).map((r) => r.state_id);
    },

    async newestAtOrBelow(q, subjectId, streamId, version) {
      const row = (
        await q<{ version: number; state_id: string; chunks: number; size_bytes: number }>(
          "SELECT version, state_id, chunks, size_bytes FROM json_states WHERE subject_id = $1 AND stream_id = $2 AND version <= $3 ORDER BY version DESC LIMIT 1",
          [subjectId, streamId, version],
        )
      )[0];
      return row === undefined ? undefined : { version: row.version, stateId: row.state_id, chunks: row.chunks, sizeBytes: row.size_bytes };
    },

    read(subjectId, streamId, ref) {
      return readChunked(ref.chunks, ref.sizeBytes, async (idx) => {
        if (isClosed()) throw new Error("store is closed");
        const rows = await query<{ data: Buffer }>("SELECT data FROM json_state_chunks WHERE subject_id = $1 AND stream_id = $2 AND state_id = $3 AND idx = $4", [
          subjectId,
          streamId,
          ref.stateId,
          idx,
        ]);
        return rows[0]?.data;
      });
    },

    drop,

    sweepOrphans() {
      void (async () => {
        const orphans = await query<{ subject_id: string; stream_id: string; state_id: string }>(
          `SELECT DISTINCT subject_id, stream_id, state_id FROM json_state_chunks c
           WHERE written_at < $1 AND NOT EXISTS (SELECT 1 FROM json_states s WHERE s.subject_id = c.subject_id AND s.stream_id = c.stream_id AND s.state_id = c.state_id)
             AND NOT EXISTS (SELECT 1 FROM deltas d WHERE d.subject_id = c.subject_id AND d.stream_id = c.stream_id AND d.payload_id = c.state_id)`,
          [Date.now() - ORPHAN_GRACE_MS],
        );
        for (const o of orphans) drop(o.subject_id, o.stream_id, [o.state_id]);
      })().catch((error: unknown) => {
        if (!isClosed()) onError(error);
      });
    },

    async idle() {
      while (worker !== undefined) await worker;
    },
  };
}
