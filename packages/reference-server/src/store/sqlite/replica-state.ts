import type { Statement } from "better-sqlite3";
import { MOVED_HOLD_UNTIL, type ReplicaStateStore } from "../replica-state-types.js";
import type { StoreNotification, SubjectEvent } from "../types.js";

/** What the replica-wide state of the SQLite store borrows from the rest of it. */
export interface SqliteReplicaStateContext {
  readonly stmt: (sql: string) => Statement;
  readonly write: <T>(fn: (sink: SubjectEvent[]) => T) => T;
  readonly notify: (notification: StoreNotification) => void;
}

/**
 * The SQLite side of {@link ReplicaStateStore}: the same tables and answers as PostgreSQL's,
 * for the one server that opens the file (the store's only replica).
 */
export function createSqliteReplicaState(ctx: SqliteReplicaStateContext): ReplicaStateStore {
  const { stmt, write } = ctx;
  let sweptAt = 0;
  return {
    async getFailureWindows(keys, windowMs, now) {
      return keys.map((key) => {
        const row = stmt("SELECT opens_at, failures FROM failure_windows WHERE key = ? AND opens_at > ?").get(key, now.getTime() - windowMs) as { opens_at: number; failures: number } | undefined;
        return row === undefined ? undefined : { opensAt: new Date(row.opens_at), failures: row.failures };
      });
    },
    async countFailure(keys, windowMs, now) {
      const t = now.getTime();
      write(() => {
        for (const key of new Set(keys)) {
          stmt(
            `INSERT INTO failure_windows (key, opens_at, failures) VALUES (?, ?, 1)
             ON CONFLICT (key) DO UPDATE SET
               failures = CASE WHEN opens_at > ? THEN failures + 1 ELSE 1 END,
               opens_at = CASE WHEN opens_at > ? THEN opens_at ELSE excluded.opens_at END`,
          ).run(key, t, t - windowMs, t - windowMs);
        }
        if (t - sweptAt >= windowMs) {
          sweptAt = t;
          stmt("DELETE FROM failure_windows WHERE opens_at <= ?").run(t - windowMs);
        }
      });
    },

    async holdSubject(subjectId, holder, until, now) {
      return write(() => {
        const row = stmt("SELECT hold_owner, hold_until FROM subjects WHERE subject_id = ?").get(subjectId) as { hold_owner: string | null; hold_until: number } | undefined;
        if (row === undefined) throw new Error("hold of a missing subject");
        if (row.hold_until > now.getTime() && row.hold_owner !== holder) return "conflict" as const;
        stmt("UPDATE subjects SET hold_owner = ?, hold_until = ? WHERE subject_id = ?").run(holder, until.getTime(), subjectId);
        return "held" as const;
      });
    },
    async getSubjectHold(subjectId, now) {
      const row = stmt("SELECT hold_owner, hold_until FROM subjects WHERE subject_id = ? AND hold_until > ?").get(subjectId, now.getTime()) as
        | { hold_owner: string | null; hold_until: number }
        | undefined;
      return row === undefined ? undefined : { holder: row.hold_owner ?? "", until: new Date(row.hold_until) };
    },
    async releaseSubjectHold(subjectId, holder) {
      write(() => stmt("UPDATE subjects SET hold_owner = NULL, hold_until = 0 WHERE subject_id = ? AND hold_owner = ?").run(subjectId, holder));
    },
    async recordHeldSubjectMove(move, holder) {
      const recorded = write(() => {
        // The hold passes to the move and never ends (see the PostgreSQL store).
        const held = stmt("UPDATE subjects SET hold_owner = NULL, hold_until = ? WHERE subject_id = ? AND hold_owner = ? AND hold_until > ?").run(MOVED_HOLD_UNTIL, move.subjectId, holder, Date.now());
        if (held.changes === 0) return false;
        stmt("INSERT OR REPLACE INTO subject_moves (subject_id, target, target_subject, moved_at) VALUES (?, ?, ?, ?)").run(move.subjectId, move.target, move.targetSubject, move.movedAt.getTime());
        return true;
      });
      if (!recorded) return "lost";
      ctx.notify({ kind: "subject-moved", subjectId: move.subjectId, target: move.target, targetSubject: move.targetSubject });
      return "recorded";
    },

    async renewMigrationLease(subjectId, migrationId, owner, until, now) {
      const renewed = write(
        () =>
          stmt(
            "UPDATE migrations SET lease_owner = ?, lease_until = ? WHERE subject_id = ? AND migration_id = ? AND active = 1 AND (lease_owner IS NULL OR lease_owner = ? OR lease_until <= ?)",
          ).run(owner, until.getTime(), subjectId, migrationId, owner, now.getTime()).changes,
      );
      return renewed > 0 ? "renewed" : "lost";
    },

    async getJwksCopy(platformId) {
      const row = stmt("SELECT jwks, fetched_at FROM jwks_copies WHERE platform_id = ?").get(platformId) as { jwks: string | null; fetched_at: number } | undefined;
      return row === undefined || row.jwks === null ? undefined : { jwks: row.jwks, fetchedAt: new Date(row.fetched_at) };
    },
    async claimJwksFetch(platformId, minIntervalMs, now) {
      const t = now.getTime();
      const changes = write(
        () =>
          stmt("INSERT INTO jwks_copies (platform_id, claimed_at) VALUES (?, ?) ON CONFLICT (platform_id) DO UPDATE SET claimed_at = excluded.claimed_at WHERE claimed_at <= ?").run(
            platformId,
            t,
            t - minIntervalMs,
          ).changes,
      );
      return changes > 0;
    },
    async putJwksCopy(platformId, copy) {
      write(() =>
        stmt(
          "INSERT INTO jwks_copies (platform_id, jwks, fetched_at) VALUES (?, ?, ?) ON CONFLICT (platform_id) DO UPDATE SET jwks = excluded.jwks, fetched_at = excluded.fetched_at WHERE fetched_at <= excluded.fetched_at",
        ).run(platformId, copy.jwks, copy.fetchedAt.getTime()),
      );
    },
  };
}
