import type { ReplicaStateStore } from "../replica-state-types.js";
import { MOVED_HOLD_UNTIL, SubjectHeldError } from "../replica-state-types.js";
import type { Query } from "./connection.js";
import { PAST_HOLDS, type SubjectTx } from "./subject-tx.js";

/** What the replica-wide state of the PostgreSQL store borrows from the rest of it. */
export interface PgReplicaStateContext {
  readonly query: Query;
  /** A subject's write transaction; `holder` may write through its own hold. */
  readonly write: <T>(subjectId: string, fn: (tx: SubjectTx) => Promise<T>, holder?: string | typeof PAST_HOLDS) => Promise<T>;
}

/**
 * The PostgreSQL side of {@link ReplicaStateStore}. Every decision is one statement or one
 * subject transaction, so two replicas deciding at once decide in turn.
 */
export function createPgReplicaState(ctx: PgReplicaStateContext): ReplicaStateStore {
  const { query, write } = ctx;
  let sweptAt = 0;
  return {
    async getFailureWindows(keys, windowMs, now) {
      const rows = await query<{ key: string; opens_at: number; failures: number }>(
        "SELECT key, opens_at, failures FROM failure_windows WHERE key = ANY($1::text[]) AND opens_at > $2",
        [keys, now.getTime() - windowMs],
      );
      const byKey = new Map(rows.map((r) => [r.key, r]));
      return keys.map((key) => {
        const row = byKey.get(key);
        return row === undefined ? undefined : { opensAt: new Date(row.opens_at), failures: row.failures };
      });
    },
    async countFailure(keys, windowMs, now) {
      const t = now.getTime();
      // One statement: two replicas counting the same key at once both count.
      await query(
        `INSERT INTO failure_windows (key, opens_at, failures) SELECT k, $2, 1 FROM unnest($1::text[]) AS k
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN failure_windows.opens_at > $3 THEN failure_windows.failures + 1 ELSE 1 END,
           opens_at = CASE WHEN failure_windows.opens_at > $3 THEN failure_windows.opens_at ELSE $2 END`,
        [[...new Set(keys)], t, t - windowMs],
      );
      if (t - sweptAt >= windowMs) {
        sweptAt = t;
        await query("DELETE FROM failure_windows WHERE opens_at <= $1", [t - windowMs]);
      }
    },

    async holdSubject(subjectId, holder, until, now) {
      try {
        return await write(subjectId, async (tx) => {
          if (!tx.exists) throw new Error("hold of a missing subject");
          const row = (await tx.query<{ hold_owner: string | null; hold_until: number }>("SELECT hold_owner, hold_until FROM subjects WHERE subject_id = $1", [subjectId]))[0]!;
          if (row.hold_until > now.getTime() && row.hold_owner !== holder) return "conflict" as const;
          await tx.query("UPDATE subjects SET hold_owner = $1, hold_until = $2 WHERE subject_id = $3", [holder, until.getTime(), subjectId]);
          return "held" as const;
        }, holder);
      } catch (error) {
        if (error instanceof SubjectHeldError) return "conflict";
        throw error;
      }
    },
    async getSubjectHold(subjectId, now) {
      const row = (
        await query<{ hold_owner: string | null; hold_until: number }>("SELECT hold_owner, hold_until FROM subjects WHERE subject_id = $1 AND hold_until > $2", [subjectId, now.getTime()])
      )[0];
      return row === undefined ? undefined : { holder: row.hold_owner ?? "", until: new Date(row.hold_until) };
    },
    async releaseSubjectHold(subjectId, holder) {
      await write(subjectId, async (tx) => {
        await tx.query("UPDATE subjects SET hold_owner = NULL, hold_until = 0 WHERE subject_id = $1 AND hold_owner = $2", [subjectId, holder]);
      }, PAST_HOLDS);
    },
    async recordHeldSubjectMove(move, holder) {
      return write(move.subjectId, async (tx) => {
        // The hold passes to the move and never ends: a write that passed a server's door
        // before the move and reaches its transaction after it is refused there.
        const held = await tx.query("UPDATE subjects SET hold_owner = NULL, hold_until = $4 WHERE subject_id = $1 AND hold_owner = $2 AND hold_until > $3 RETURNING 1", [move.subjectId, holder, Date.now(), MOVED_HOLD_UNTIL]);
        if (held.length === 0) return "lost" as const;
        await tx.query(
          `INSERT INTO subject_moves (subject_id, target, target_subject, moved_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (subject_id) DO UPDATE SET target = EXCLUDED.target, target_subject = EXCLUDED.target_subject, moved_at = EXCLUDED.moved_at`,
          [move.subjectId, move.target, move.targetSubject, move.movedAt.getTime()],
        );
        tx.notice({ kind: "subject-moved", subjectId: move.subjectId, target: move.target, targetSubject: move.targetSubject });
        return "recorded" as const;
      }, PAST_HOLDS);
    },

    async renewMigrationLease(subjectId, migrationId, owner, until, now) {
      // A lease is not a write of the subject's data: it is renewed while the subject is held too.
      const rows = await query(
        `UPDATE migrations SET lease_owner = $3, lease_until = $4
         WHERE subject_id = $1 AND migration_id = $2 AND active AND (lease_owner IS NULL OR lease_owner = $3 OR lease_until <= $5) RETURNING 1`,
        [subjectId, migrationId, owner, until.getTime(), now.getTime()],
      );
      return rows.length > 0 ? "renewed" : "lost";
    },

    async getJwksCopy(platformId) {
      const row = (await query<{ jwks: string | null; fetched_at: number }>("SELECT jwks, fetched_at FROM jwks_copies WHERE platform_id = $1", [platformId]))[0];
      return row === undefined || row.jwks === null ? undefined : { jwks: row.jwks, fetchedAt: new Date(row.fetched_at) };
    },
    async claimJwksFetch(platformId, minIntervalMs, now) {
      const t = now.getTime();
      const rows = await query(
        `INSERT INTO jwks_copies (platform_id, claimed_at) VALUES ($1, $2)
         ON CONFLICT (platform_id) DO UPDATE SET claimed_at = EXCLUDED.claimed_at WHERE jwks_copies.claimed_at <= $3 RETURNING 1`,
        [platformId, t, t - minIntervalMs],
      );
      return rows.length > 0;
    },
    async putJwksCopy(platformId, copy) {
      await query(
        `INSERT INTO jwks_copies (platform_id, jwks, fetched_at) VALUES ($1, $2, $3)
         ON CONFLICT (platform_id) DO UPDATE SET jwks = EXCLUDED.jwks, fetched_at = EXCLUDED.fetched_at WHERE jwks_copies.fetched_at <= EXCLUDED.fetched_at`,
        [platformId, copy.jwks, copy.fetchedAt.getTime()],
      );
    },
  };
}
