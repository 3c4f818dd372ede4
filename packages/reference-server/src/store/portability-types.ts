/**
 * The part of the storage contract that the `portability` profile needs: reading a whole
 * subject in bundle order, writing imported records as they were, and remembering moves and
 * migrations. Kept beside `types.ts` so that the core contract stays readable; `Store`
 * extends it, so every backend implements both and passes one contract suite.
 */
import type {
  AccountLinkRecord,
  AppendHead,
  CheckpointRecord,
  DeltaRecord,
  DeviceRecord,
  EncodingCode,
  GrantRecord,
  Page,
  PageRequest,
  PolicyCode,
  StreamRecord,
} from "./types.js";

/** The identity records of a bundle, in the order a bundle carries their kinds. */
export type SubjectRecordKind = "checkpoint" | "account-link" | "device" | "grant";

/** The record type of each {@link SubjectRecordKind}. */
export interface SubjectRecordOf {
  readonly checkpoint: CheckpointRecord;
  readonly "account-link": AccountLinkRecord;
  readonly device: DeviceRecord;
  readonly grant: GrantRecord;
}

/** The state a stream starts from at its horizon when it is imported. */
export type ImportedBase =
  /** Horizon 0, or a JSON stream's canonical state at the horizon. */
  | { readonly kind: "json"; readonly state: Uint8Array }
  /** An opaque stream at horizon 0: nothing to store. */
  | { readonly kind: "none" }
  /** An opaque stream's uploaded snapshot at its horizon. */
  | { readonly kind: "opaque-snapshot"; readonly state: Uint8Array; readonly snapshotHash: Uint8Array };

/** Input of {@link PortabilityStore.importStream}. */
export interface ImportStreamInput {
  readonly subjectId: string;
  readonly id: string;
  readonly uid: string;
  readonly type: string;
  readonly encoding: EncodingCode;
  readonly conflictPolicy: PolicyCode;
  readonly ownerPlatformId: string;
  readonly genesisHash: Uint8Array;
  readonly horizonVersion: number;
  readonly horizonHash: Uint8Array;
  readonly base: ImportedBase;
  readonly createdAt: Date;
  readonly maxStreamsPerSubject: number;
  readonly now: Date;
}

/** Result of {@link PortabilityStore.importStream}. */
export type ImportStreamResult =
  /** New: created at its horizon (head = horizon), logged as `stream-created`. */
  | { readonly kind: "created"; readonly stream: StreamRecord }
  /** A stream with this uid is already there under this id (a repeated or resumed import). */
  | { readonly kind: "exists"; readonly stream: StreamRecord }
  /** The id is taken by a stream with another uid. */
  | { readonly kind: "id-taken" }
  /** The uid is already there under another id. */
  | { readonly kind: "uid-taken" }
  | { readonly kind: "limit-reached" }
  | { readonly kind: "subject-not-found" };

/** One delta as a bundle carries it, its chain already verified by the caller. */
export type ImportedDelta = Omit<DeltaRecord, "subjectId" | "streamId" | "streamUid" | "encoding">;

/** Input of {@link PortabilityStore.importDeltas}. */
export interface ImportDeltasInput {
  readonly subjectId: string;
  readonly streamId: string;
  readonly streamUid: string;
  /** Consecutive versions. Those at or below the stored head are skipped after their hash is compared. */
  readonly deltas: readonly ImportedDelta[];
  /**
   * JSON streams: applies the new deltas to the head state the service holds, inside the
   * transaction, given the head they follow (synchronous; throw to refuse). It may apply only
   * the first of them (what one call's bounds allow) and return how many: the store then
   * stores those alone and reports the head they reach, and the caller sends the rest again.
   * Opaque: undefined.
   */
  readonly stateAfter: ((head: AppendHead, newDeltas: readonly ImportedDelta[]) => number | void) | undefined;
  readonly now: Date;
}

/** Result of {@link PortabilityStore.importDeltas}. */
export type ImportDeltasResult =
  | { readonly kind: "imported"; readonly stream: StreamRecord; readonly imported: number; readonly skipped: number }
  | { readonly kind: "stream-not-found" }
  /** The deltas do not continue the stored chain (another history under the same uid). */
  | { readonly kind: "chain-mismatch"; readonly version: number }
  /** The first new delta is not the one after the stored head. */
  | { readonly kind: "gap"; readonly headVersion: number };

/** What an identity record import did. */
export type ImportRecordResult = "imported" | "skipped" | "linked-elsewhere";

/** That a subject moved to another server, and until when this server says so. */
export interface SubjectMoveRecord {
  readonly subjectId: string;
  /** The target server's address. */
  readonly target: string;
  /** The subject's name on the target. */
  readonly targetSubject: string;
  readonly movedAt: Date;
}

/** Lifecycle of a migration on its target. */
export type MigrationStateName = "copying" | "switching" | "completed" | "failed" | "cancelled";

/** A live migration, as its target keeps it. */
export interface MigrationRecord {
  readonly subjectId: string;
  readonly id: string;
  readonly source: string;
  readonly sourceSubject: string;
  readonly state: MigrationStateName;
  readonly recordsCopied: number;
  readonly recordsTotal: number;
  readonly bytesCopied: number;
  readonly lagDeltas: number;
  /** Milliseconds writes were held on the source at the switch, once switched. */
  readonly switchPauseMs: number | undefined;
  readonly error: string;
  readonly createdAt: Date;
  readonly endedAt: Date | undefined;
  /**
   * Set by the runner just before it sends the switch's commit, and kept on every record it
   * stores after: from then on the switch is the source's, and a cancel through another
   * server, which stores a record without it, is refused (see putMigration).
   */
  readonly committing?: boolean;
}

/** See the module comment. */
export interface PortabilityStore {
  // --- export ---------------------------------------------------------------------------

  /** Every stream of the subject, whoever owns it, ordered by uid (bytewise). */
  listStreamsByUid(subjectId: string, page: PageRequest): Promise<Page<StreamRecord>>;
  /** Every record of a kind, ordered by id (bytewise); grants and devices include revoked ones. */
  listSubjectRecords<K extends SubjectRecordKind>(subjectId: string, kind: K, page: PageRequest): Promise<Page<SubjectRecordOf[K]>>;

  // --- import ---------------------------------------------------------------------------

  /** Creates a stream at its horizon with the given identity, or reports what is in the way. */
  importStream(input: ImportStreamInput): Promise<ImportStreamResult>;
  /**
   * Appends verified deltas as they were (device, client sequence, batch, commit time) in one
   * transaction: the head, the state, one `deltas-appended` event per batch completed, and
   * for each completed batch of a device the client-sequence outcome rebuilt from it, so that
   * a repeat of that sequence is answered as a replay (PORT-027).
   */
  importDeltas(input: ImportDeltasInput): Promise<ImportDeltasResult>;
  /** Inserts the record unless one with its id exists; an account link already linked elsewhere is refused. */
  importSubjectRecord<K extends SubjectRecordKind>(kind: K, record: SubjectRecordOf[K]): Promise<ImportRecordResult>;

  // --- moves (the source's side) ----------------------------------------------------------

  /** Records durably that the subject moved, and notifies `subject-moved`. */
  recordSubjectMove(move: SubjectMoveRecord): Promise<void>;
  getSubjectMove(subjectId: string): Promise<SubjectMoveRecord | undefined>;
  /** Erases every subject that moved before `before` (the declared redirect time is over); returns how many. */
  eraseMovedSubjects(before: Date): Promise<number>;

  // --- migrations (the target's side) ---------------------------------------------------

  /**
   * Inserts or replaces a migration. A subject has at most one that has not ended: storing a
   * second one answers `conflict` and stores nothing. A migration that has ended is never
   * replaced, and with `ifState` one that is no longer in that state is not either: both
   * answer `stale` and store nothing (the runner on one server learns so that the migration
   * was cancelled through another). A record stored as `committing` is replaced only by one
   * that is `committing` too (its runner's), so a cancel through another server cannot land
   * once the commit is on its way: it answers `stale`. `lease` makes `lease.owner` its runner
   * from the start (see ReplicaStateStore.renewMigrationLease).
   */
  putMigration(
    migration: MigrationRecord,
    options?: { readonly ifState?: MigrationStateName; readonly lease?: { readonly owner: string; readonly until: Date } },
  ): Promise<"stored" | "conflict" | "stale">;
  getMigration(subjectId: string, migrationId: string): Promise<MigrationRecord | undefined>;
  /** The subject's migration that has not ended, if any. */
  findActiveMigration(subjectId: string): Promise<MigrationRecord | undefined>;
  /**
   * Ends as failed, with `error`, every migration still marked running (of any subject) whose
   * runner's lease ran out by `now` (or that never had one): no server runs it any more.
   * A migration another live server runs is left alone. Returns how many.
   */
  failInterruptedMigrations(error: string, now: Date): Promise<number>;
}
