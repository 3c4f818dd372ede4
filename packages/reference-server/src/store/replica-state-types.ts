/**
 * State that a server would otherwise keep in its process, kept in the store so that servers
 * on one store (replicas on one PostgreSQL schema) act as one server: the count of failed
 * link-code redemptions (LINK-019), the hold of a subject's writes during a switch
 * (PORT-033), who runs a migration (a lease), and the copy of an OpenID provider's key set
 * (TOKEN-025). On a store only one process opens (SQLite) the same calls keep the same
 * answers; they just have nobody else to agree with.
 *
 * Times are the caller's clock, in epoch milliseconds when stored. Leases and holds end by
 * themselves at their `until`, so the state of a server that died ends with its lease.
 */

/** A fixed window of failures that opened at `opensAt`. */
export interface FailureWindow {
  readonly opensAt: Date;
  readonly failures: number;
}

/** The `until` of the hold a recorded move keeps for good (`recordHeldSubjectMove`). */
export const MOVED_HOLD_UNTIL = Number.MAX_SAFE_INTEGER;

/** A subject's writes held for a switch by `holder` until `until`. */
export interface SubjectHoldRecord {
  readonly holder: string;
  readonly until: Date;
}

/** The last key set fetched from a platform's provider, as one replica fetched it for all. */
export interface JwksCopyRecord {
  /** The JWKS document as fetched (JSON text). */
  readonly jwks: string;
  readonly fetchedAt: Date;
}

/** What a migration's runner learns when it renews its lease. */
export type LeaseRenewal =
  /** It still runs the migration, until the new `until`. */
  | "renewed"
  /** The migration ended meanwhile (cancelled through another server), or another owner holds it. */
  | "lost";

/** See the module comment. */
export interface ReplicaStateStore {
  // --- failed link-code redemptions (LINK-019) ------------------------------------------

  /** The live window of each key (undefined when none or it has ended), in `keys` order. */
  getFailureWindows(keys: readonly string[], windowMs: number, now: Date): Promise<(FailureWindow | undefined)[]>;
  /**
   * Counts one failure against each key, atomically across servers: a key whose window ended
   * (or that has none) opens a new one at `now` with one failure. Windows ended long ago are
   * removed as it goes, so the rows are bounded by the failures of one window.
   */
  countFailure(keys: readonly string[], windowMs: number, now: Date): Promise<void>;

  // --- holds of a subject's writes (PORT-033) -------------------------------------------

  /**
   * Holds the subject's writes for `holder` until `until`. From the commit of the hold on,
   * until it is released, recorded as a move, or `until` passes, every write intent of the
   * subject (append, create, erase, …) fails with {@link SubjectHeldError}, whichever
   * server runs it; what committed before the hold is what the switch hands over.
   * `conflict` when another holder's hold is live.
   */
  holdSubject(subjectId: string, holder: string, until: Date, now: Date): Promise<"held" | "conflict">;
  /** The subject's live hold, if any. */
  getSubjectHold(subjectId: string, now: Date): Promise<SubjectHoldRecord | undefined>;
  /** Ends `holder`'s hold of the subject, if it still has it. */
  releaseSubjectHold(subjectId: string, holder: string): Promise<void>;
  /**
   * Records the move of a held subject, in one transaction with handing the hold over to the
   * move: from then on every write intent of the subject fails with {@link SubjectHeldError}
   * for good (the hold's `until` becomes {@link MOVED_HOLD_UNTIL}, with no holder), and only
   * erasing the moved subject (`eraseMovedSubjects`) writes it. A write passes a server's
   * door (the move read before its transaction, `subject-gate.ts`) apart from its
   * transaction, so one that passed before the move on another replica must still be refused
   * in its transaction after it: ending the hold here would acknowledge a write the switch
   * never handed over. `lost` (and nothing recorded) when `holder` no longer holds it live:
   * its hold ran out, and writes may have been acknowledged since.
   */
  recordHeldSubjectMove(move: { readonly subjectId: string; readonly target: string; readonly targetSubject: string; readonly movedAt: Date }, holder: string): Promise<"recorded" | "lost">;

  // --- who runs a migration -------------------------------------------------------------

  /**
   * Makes `owner` the runner of a migration that has not ended, until `until`: when it is
   * unowned, owned by `owner`, or its owner's lease ran out. `lost` when it ended or another
   * owner's lease is live.
   */
  renewMigrationLease(subjectId: string, migrationId: string, owner: string, until: Date, now: Date): Promise<LeaseRenewal>;

  // --- OpenID provider key sets (TOKEN-025) ----------------------------------------------

  getJwksCopy(platformId: string): Promise<JwksCopyRecord | undefined>;
  /**
   * Claims the right to fetch the platform's key set now: true at most once per
   * `minIntervalMs` across every server on the store.
   */
  claimJwksFetch(platformId: string, minIntervalMs: number, now: Date): Promise<boolean>;
  /** Keeps a fetched key set for every server, unless a newer one is kept already. */
  putJwksCopy(platformId: string, copy: JwksCopyRecord): Promise<void>;
}

/**
 * A write intent of a subject whose writes another holder holds for a switch: nothing was
 * written. The write may be tried again once the hold is released, or answered
 * SUBJECT_MOVED once the move is recorded.
 */
export class SubjectHeldError extends Error {
  override readonly name = "SubjectHeldError";
  constructor(readonly subjectId: string) {
    super(`the writes of subject ${subjectId} are held for a switch`);
  }
}
