/**
 * The storage contract of the reference server.
 *
 * Services talk to storage only through this interface, so that a PostgreSQL store can be
 * added next to the SQLite one without touching them. Every method is async and names an
 * intent (append a batch, capture a checkpoint, redeem a link code), never a query: the
 * store owns its transactions, and everything one intent changes — including the
 * subject's event log entry that records it — commits or rolls back together.
 *
 * Conventions:
 * - Every record is keyed by subject first; no method reaches across subjects.
 * - Versions, sequences and sizes are JS numbers (the wire layer rejects values above
 *   `Number.MAX_SAFE_INTEGER` before they reach the store).
 * - Hashes and payloads are `Uint8Array`s; timestamps are `Date`s supplied by the caller
 *   (`now`), so that tests can drive a fake clock.
 * - Lists return a {@link Page}: the store decides the order key and hands back an opaque
 *   `nextAfter`; services wrap it into signed page tokens.
 *
 * Implementing another backend (e.g. PostgreSQL): run `describeStoreContract` from
 * `src/testing/store-contract.ts` against it. `appendBatch` must lock the stream row
 * (`SELECT … FOR UPDATE`) so the sequence, policy and expected-version decisions and the
 * `build` call see the head they commit on; group commit is an optimisation, not a
 * contract. Event sequences are allocated per subject inside the writing transaction, and
 * `onNotification` listeners are called only after commit, in sequence order per subject
 * (across processes this becomes LISTEN/NOTIFY plus a read of the log).
 */

import type { PortabilityStore } from "./portability-types.js";
import type { ReplicaStateStore } from "./replica-state-types.js";

/** Delta encodings, numbered as in the proto and in the hash chain's one-byte code. */
export const Encoding = { JsonPatch: 1, JsonMergePatch: 2, Opaque: 3 } as const;
/** One of {@link Encoding}. */
export type EncodingCode = (typeof Encoding)[keyof typeof Encoding];

/** Conflict policies, numbered as in the proto. */
export const Policy = { RequireExpectedVersion: 1, AllowBlindAppend: 2 } as const;
/** One of {@link Policy}. */
export type PolicyCode = (typeof Policy)[keyof typeof Policy];

/** What a consent grant allows. */
export type GrantAccessLevel = "read" | "read-write";

/** Lifecycle of a handoff. */
export type HandoffStateName = "offered" | "accepted" | "declined" | "expired";

/** One page of a list, with the opaque key to continue after it (undefined on the last page). */
export interface Page<T> {
  readonly items: T[];
  readonly nextAfter: string | undefined;
}

/** Where a list starts and how long a page is. */
export interface PageRequest {
  /** `nextAfter` of the previous page; undefined for the first. */
  readonly after: string | undefined;
  /** Page size, already clamped by the service. */
  readonly limit: number;
}

// ---------------------------------------------------------------------------------------
// Identity records
// ---------------------------------------------------------------------------------------

/** A person, known only by a server-minted opaque id. */
export interface SubjectRecord {
  readonly id: string;
  readonly createdAt: Date;
}

/** A platform account that belongs to a subject. */
export interface AccountLinkRecord {
  readonly subjectId: string;
  readonly id: string;
  readonly platformId: string;
  readonly accountId: string;
  readonly createdAt: Date;
}

/** A device of a subject; `revokedAt` is set once and never cleared. */
export interface DeviceRecord {
  readonly subjectId: string;
  readonly id: string;
  readonly platformId: string;
  readonly displayName: string;
  readonly createdAt: Date;
  readonly revokedAt: Date | undefined;
}

/** A consent grant; `revokedAt` is set once and never cleared. */
export interface GrantRecord {
  readonly subjectId: string;
  readonly id: string;
  readonly grantorPlatformId: string;
  readonly granteePlatformId: string;
  /** A stream type, or `*` for every stream the grantor owns. */
  readonly streamType: string;
  readonly access: GrantAccessLevel;
  readonly createdAt: Date;
  readonly revokedAt: Date | undefined;
}

// ---------------------------------------------------------------------------------------
// Core records
// ---------------------------------------------------------------------------------------

/** A stream with its head and horizon, as of the read that returned it. */
export interface StreamRecord {
  readonly subjectId: string;
  /** The `{stream}` segment of the resource name. */
  readonly id: string;
  /** Lowercase UUID; what the hash chain commits to. */
  readonly uid: string;
  readonly type: string;
  readonly encoding: EncodingCode;
  readonly conflictPolicy: PolicyCode;
  readonly ownerPlatformId: string;
  /** Chain hash at version 0. */
  readonly genesisHash: Uint8Array;
  readonly headVersion: number;
  readonly headHash: Uint8Array;
  readonly horizonVersion: number;
  readonly horizonHash: Uint8Array;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** An immutable, committed delta. */
export interface DeltaRecord {
  readonly subjectId: string;
  readonly streamId: string;
  readonly streamUid: string;
  readonly version: number;
  readonly encoding: EncodingCode;
  /** Canonical JSON (JSON streams) or the bytes as sent (opaque). */
  readonly payload: Uint8Array;
  readonly prevHash: Uint8Array;
  readonly hash: Uint8Array;
  /** Undefined for server-generated deltas (restore). */
  readonly deviceId: string | undefined;
  /** 0 for server-generated deltas. */
  readonly clientSequence: number;
  readonly batchFirstVersion: number;
  readonly batchSize: number;
  readonly committedAt: Date;
}

/** An uploaded snapshot of an opaque stream (its bytes are read with `readSnapshotChunks`). */
export interface SnapshotRecord {
  readonly subjectId: string;
  readonly streamId: string;
  readonly version: number;
  readonly headHash: Uint8Array;
  readonly sizeBytes: number;
  readonly snapshotHash: Uint8Array;
  readonly createdAt: Date;
}

/** The resume payload of a checkpoint, as typed fields. */
export interface ResumeRecord {
  readonly activityType: string;
  readonly resource: string;
  readonly position: string;
  readonly fallbackUrl: string;
  readonly attributes: Readonly<Record<string, string>>;
}

/** One stream's position in a checkpoint. */
export interface CheckpointEntryRecord {
  readonly streamId: string;
  readonly streamUid: string;
  /** Captured so that visibility can still be decided after the stream is deleted. */
  readonly streamType: string;
  readonly ownerPlatformId: string;
  readonly version: number;
  readonly headHash: Uint8Array;
}

/** A durable, named point over streams of a subject. */
export interface CheckpointRecord {
  readonly subjectId: string;
  readonly id: string;
  /** Ordered by `streamUid` (bytewise). */
  readonly entries: readonly CheckpointEntryRecord[];
  readonly resume: ResumeRecord;
  readonly digest: Uint8Array;
  readonly deviceId: string | undefined;
  readonly platformId: string;
  readonly createdAt: Date;
}

/** The owner platform and type of a stream: all that read access is decided on. */
export interface StreamAccessKey {
  readonly ownerPlatformId: string;
  readonly type: string;
}

/** A checkpoint offered to the subject's other devices. */
export interface HandoffRecord {
  readonly subjectId: string;
  readonly id: string;
  readonly checkpointId: string;
  /**
   * The streams of its checkpoint as captured at offer time. A handoff is visible only to
   * platforms that may read every one of them, and the checkpoint can be deleted while the
   * handoff lives on (it then expires), so visibility must not depend on re-reading it.
   * Empty only for handoffs whose checkpoint was gone before this was recorded: those are
   * visible to no platform.
   */
  readonly checkpointStreams: readonly StreamAccessKey[];
  readonly sourceDeviceId: string;
  readonly targetDeviceId: string | undefined;
  readonly state: HandoffStateName;
  readonly resolvedBy: string | undefined;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly resolvedAt: Date | undefined;
}

// ---------------------------------------------------------------------------------------
// Subject event log
// ---------------------------------------------------------------------------------------

/** Enough of a stream to decide whether a platform may see an event about it. */
export interface StreamRef {
  readonly id: string;
  readonly uid: string;
  readonly type: string;
  readonly ownerPlatformId: string;
}

/** What an event-log entry records. */
export type SubjectEventBody =
  | {
      readonly kind: "deltas-appended";
      readonly stream: StreamRef;
      readonly firstVersion: number;
      readonly count: number;
      /**
       * The batch's deltas: all `count` of them, or none when they are no longer all
       * retained (compacted, even partly, or the stream was deleted) by the time the event
       * is read back from the log. A batch is delivered whole or not at all.
       */
      readonly deltas: readonly DeltaRecord[];
    }
  | { readonly kind: "stream-created"; readonly stream: StreamRecord }
  | { readonly kind: "stream-deleted"; readonly stream: StreamRef }
  | { readonly kind: "stream-compacted"; readonly stream: StreamRecord }
  | { readonly kind: "handoff-offered"; readonly handoff: HandoffRecord; readonly checkpoint: CheckpointRecord }
  | { readonly kind: "handoff-resolved"; readonly handoff: HandoffRecord }
  | { readonly kind: "grant-revoked"; readonly grant: GrantRecord }
  | { readonly kind: "device-revoked"; readonly deviceId: string };

/** One entry of a subject's event log. Sequences start at 1 and have no gaps. */
export interface SubjectEvent {
  readonly subjectId: string;
  readonly sequence: number;
  readonly committedAt: Date;
  readonly body: SubjectEventBody;
}

/** A stream whose logged batches were compacted away, at least in part. */
export interface CompactedBatchStream {
  readonly stream: StreamRef;
  readonly horizonVersion: number;
}

/** The retained window of a subject's event log. */
export interface EventBounds {
  /** Events with a sequence at or below this were discarded by retention. */
  readonly horizon: number;
  /** Sequence of the newest event; 0 when none was ever written. */
  readonly head: number;
}

/**
 * What the store tells listeners after a commit. `events` arrive in sequence order per
 * subject; `subject-erased` and `account-link-deleted` have no log entry — the first
 * because the log is erased with the subject, the second because it ends a platform's
 * access rather than describing a change to state.
 */
export type StoreNotification =
  | { readonly kind: "events"; readonly subjectId: string; readonly events: readonly SubjectEvent[] }
  | { readonly kind: "subject-erased"; readonly subjectId: string }
  /** A link was removed; the platform's tokens may have lost their last link to the subject. */
  | { readonly kind: "account-link-deleted"; readonly subjectId: string; readonly platformId: string }
  /** The subject moved to another server: its subscriptions end with SUBJECT_MOVED. */
  | { readonly kind: "subject-moved"; readonly subjectId: string; readonly target: string; readonly targetSubject: string };

// ---------------------------------------------------------------------------------------
// Intent inputs and results
// ---------------------------------------------------------------------------------------

/** Which streams a platform may see: its own, plus those its grants share with it. */
export interface StreamVisibility {
  readonly platformId: string;
  /** From active grants held by `platformId`: owner platform and stream type (or `*`). */
  readonly shared: readonly { readonly ownerPlatformId: string; readonly streamType: string }[];
}

/** Input of {@link Store.createStream}. */
export interface CreateStreamInput {
  readonly subjectId: string;
  readonly id: string;
  readonly uid: string;
  readonly type: string;
  readonly encoding: EncodingCode;
  readonly conflictPolicy: PolicyCode;
  readonly ownerPlatformId: string;
  readonly genesisHash: Uint8Array;
  /** Canonical JSON of the initial state for JSON streams; undefined for opaque. */
  readonly initialState: Uint8Array | undefined;
  readonly maxStreamsPerSubject: number;
  readonly now: Date;
}

/** Result of {@link Store.createStream}. */
export type CreateStreamResult =
  | { readonly kind: "created"; readonly stream: StreamRecord }
  | { readonly kind: "already-exists" }
  | { readonly kind: "limit-reached" }
  | { readonly kind: "subject-not-found" };

/** The head a batch is built on, read inside the append's transaction. */
export interface AppendHead {
  readonly stream: StreamRecord;
  /**
   * JSON streams: how far the head is from the newest stored state, so that the service can
   * decide when to store one (the rule is the service's, see `services/json-heads.ts`). The
   * store keeps no state per append: the head state lives in the service's memory, validated
   * against `stream.headVersion` and `stream.headHash`.
   */
  readonly stateLag: StateLag;
}

/** What separates a JSON stream's head from its newest stored state. */
export interface StateLag {
  /** Version of the newest stored state. */
  readonly version: number;
  /** Payload bytes of the deltas after it. */
  readonly bytes: number;
}

/** One delta computed by {@link AppendInput.build}. */
export interface BuiltDelta {
  readonly payload: Uint8Array;
  readonly prevHash: Uint8Array;
  readonly hash: Uint8Array;
}

/** The deltas of a batch. */
export interface BuiltBatch {
  readonly deltas: readonly BuiltDelta[];
}

/** Input of {@link Store.appendBatch}. */
export interface AppendInput {
  readonly subjectId: string;
  readonly streamId: string;
  /**
   * The uid of the stream the caller checked access to. Appends commit later, in a group; if
   * the id names another stream by then (deleted and recreated, perhaps by another platform),
   * the append answers `stream-not-found` instead of landing in a stream it was never
   * allowed to write.
   */
  readonly streamUid: string;
  /** The appending device; undefined only for server-generated deltas. */
  readonly deviceId: string | undefined;
  /**
   * The device's client sequence; undefined for server-generated appends, which take part
   * in no exactly-once bookkeeping.
   */
  readonly clientSequence: number | undefined;
  /** Identifies the request, so that a retry can be told apart from a reuse. */
  readonly fingerprint: Uint8Array;
  readonly expectedVersion: number | undefined;
  /**
   * False for server-generated appends (restore's compensating deltas), which go at the head
   * whatever the stream's conflict policy (RESTORE-007). Default true.
   */
  readonly enforceConflictPolicy?: boolean;
  readonly now: Date;
  /**
   * Payloads `build` is expected to return, when they are known before the append (restore's
   * compensating delta, as large as a state). The store writes those larger than
   * `DELTA_PAYLOAD_INLINE_BYTES` in chunks ahead of its transaction, a statement each, and a
   * built delta whose payload is one of them (the same object) names its chunks instead of
   * carrying it; chunks no committed delta names are deleted. Other payloads go in the row.
   */
  readonly expectedPayloads?: readonly Uint8Array[];
  /**
   * Computes the batch from the head as it is when the append commits. It runs inside the
   * store's transaction, so it must be synchronous and pure; it throws to refuse the batch
   * (the error comes back as `{ kind: "rejected" }` and nothing is written).
   */
  readonly build: (head: AppendHead) => BuiltBatch;
}

/**
 * How many of each device's latest acknowledged client sequences on a stream keep their
 * outcome in every store (APPEND-060, declared as `Limits.client_outcomes_retained`): the
 * latest, which is the only one a device appending one request at a time can retry.
 */
export const CLIENT_OUTCOMES_RETAINED = 1;

/** The acknowledged outcome of an append, stored with its client sequence. */
export interface AppendOutcome {
  readonly receipts: readonly { readonly version: number; readonly hash: Uint8Array }[];
  readonly headVersion: number;
  readonly headHash: Uint8Array;
}

/** Result of {@link Store.appendBatch}. */
export type AppendResult =
  | { readonly kind: "committed"; readonly outcome: AppendOutcome; readonly deltas: readonly DeltaRecord[] }
  | { readonly kind: "replayed"; readonly outcome: AppendOutcome }
  | { readonly kind: "stream-not-found" }
  | { readonly kind: "sequence-reused"; readonly clientSequence: number; readonly expectedSequence: number }
  /** Acknowledged, but older than the outcomes the store keeps (APPEND-061). */
  | { readonly kind: "sequence-expired"; readonly clientSequence: number; readonly expectedSequence: number }
  | { readonly kind: "sequence-gap"; readonly expectedSequence: number }
  | { readonly kind: "expected-version-required" }
  | { readonly kind: "version-conflict"; readonly headVersion: number; readonly headHash: Uint8Array }
  | { readonly kind: "rejected"; readonly error: unknown };

/** The nearest stored state at or below a version, and the deltas from it up to that version. */
export interface StateBase {
  readonly stream: StreamRecord;
  readonly baseVersion: number;
  /** Canonical JSON of the state at `baseVersion`. */
  readonly baseState: Uint8Array;
  /** Deltas `baseVersion + 1 ..= version`, in order. */
  readonly deltas: readonly DeltaRecord[];
}

/** Input of {@link Store.putJsonState}. */
export interface PutJsonStateInput {
  readonly subjectId: string;
  readonly streamId: string;
  readonly streamUid: string;
  readonly version: number;
  /** Canonical JSON of the state at `version`. */
  readonly state: Uint8Array;
}

/** Result of reading a version that must lie inside the retained history. */
export type VersionCheck =
  | { readonly kind: "stream-not-found" }
  | { readonly kind: "below-horizon"; readonly horizonVersion: number }
  | { readonly kind: "ahead-of-head"; readonly headVersion: number };

/** Input of {@link Store.putSnapshot}. */
export interface PutSnapshotInput {
  readonly subjectId: string;
  readonly streamId: string;
  readonly version: number;
  readonly sizeBytes: number;
  readonly snapshotHash: Uint8Array;
  /**
   * Checks the hash against the chain hash the store holds at `version`, inside the
   * transaction; returns false to refuse.
   */
  readonly verify: (stream: StreamRecord, headHashAtVersion: Uint8Array) => boolean;
  readonly chunks: readonly Uint8Array[];
  readonly now: Date;
}

/** Result of {@link Store.putSnapshot}. */
export type PutSnapshotResult =
  | { readonly kind: "stored"; readonly snapshot: SnapshotRecord; readonly stream: StreamRecord }
  | { readonly kind: "not-opaque"; readonly encoding: EncodingCode }
  | { readonly kind: "mismatch" }
  | VersionCheck;

/** Input of {@link Store.compactStream}. */
export interface CompactInput {
  readonly subjectId: string;
  readonly streamId: string;
  readonly horizonVersion: number;
  /** Canonical JSON state at `horizonVersion` for JSON streams (kept as the base state). */
  readonly stateAtHorizon: Uint8Array | undefined;
  readonly now: Date;
}

/** Result of {@link Store.compactStream}. */
export type CompactResult =
  | { readonly kind: "compacted"; readonly stream: StreamRecord }
  | { readonly kind: "unchanged"; readonly stream: StreamRecord }
  | { readonly kind: "snapshot-required" }
  | { readonly kind: "stream-not-found" }
  | { readonly kind: "ahead-of-head"; readonly headVersion: number };

/** Input of {@link Store.createCheckpoint}. */
export interface CreateCheckpointInput {
  readonly subjectId: string;
  readonly id: string;
  /** Each stream once; `version` undefined means the head at capture time. */
  readonly selectors: readonly { readonly streamId: string; readonly version: number | undefined }[];
  readonly resume: ResumeRecord;
  readonly deviceId: string | undefined;
  readonly platformId: string;
  /** Decides, inside the transaction, whether the caller may read each captured stream. */
  readonly canRead: (stream: StreamRecord) => boolean;
  /** Computes the digest from the captured entries (sorted by uid). */
  readonly digest: (entries: readonly CheckpointEntryRecord[]) => Uint8Array;
  readonly now: Date;
}

/** Result of {@link Store.createCheckpoint}. */
export type CreateCheckpointResult =
  | { readonly kind: "created"; readonly checkpoint: CheckpointRecord }
  | { readonly kind: "already-exists" }
  | { readonly kind: "stream-not-found"; readonly index: number }
  | { readonly kind: "below-horizon"; readonly index: number; readonly horizonVersion: number }
  | { readonly kind: "ahead-of-head"; readonly index: number; readonly headVersion: number };

/** Input of {@link Store.createHandoff}. */
export interface CreateHandoffInput {
  readonly subjectId: string;
  readonly id: string;
  readonly checkpointId: string;
  readonly sourceDeviceId: string;
  readonly targetDeviceId: string | undefined;
  readonly now: Date;
  readonly expiresAt: Date;
}

/** Result of {@link Store.createHandoff}. */
export type CreateHandoffResult =
  | { readonly kind: "created"; readonly handoff: HandoffRecord; readonly checkpoint: CheckpointRecord }
  | { readonly kind: "checkpoint-not-found" }
  | { readonly kind: "target-not-found" };

/** Input of {@link Store.resolveHandoff}. */
export interface ResolveHandoffInput {
  readonly subjectId: string;
  readonly handoffId: string;
  readonly deviceId: string;
  readonly resolution: "accepted" | "declined";
  readonly now: Date;
}

/** Result of {@link Store.resolveHandoff}. */
export type ResolveHandoffResult =
  | { readonly kind: "resolved"; readonly handoff: HandoffRecord; readonly checkpoint: CheckpointRecord | undefined }
  | { readonly kind: "not-found" }
  /** The device is the source, or not the handoff's target. */
  | { readonly kind: "not-eligible" }
  | { readonly kind: "already-resolved"; readonly handoff: HandoffRecord };

/** Input of {@link Store.createSubjectWithLink}. */
export interface CreateSubjectInput {
  /** Used only when the account is not linked yet. */
  readonly subjectId: string;
  readonly linkId: string;
  readonly platformId: string;
  readonly accountId: string;
  readonly now: Date;
}

/** Result of {@link Store.createSubjectWithLink}: the account's subject, new or existing. */
export interface SubjectWithLink {
  readonly subject: SubjectRecord;
  readonly link: AccountLinkRecord;
  /** True when this call created the subject. */
  readonly created: boolean;
}

/** Input of {@link Store.redeemLinkCode}. */
export interface RedeemLinkCodeInput {
  /** SHA-256 of the normalized code. */
  readonly codeHash: Uint8Array;
  readonly platformId: string;
  readonly accountId: string;
  /** Used when a new link is created. */
  readonly linkId: string;
  readonly now: Date;
}

/** Result of {@link Store.redeemLinkCode}. */
export type RedeemLinkCodeResult =
  | { readonly kind: "linked"; readonly link: AccountLinkRecord }
  /** Unknown, expired or used: deliberately one case. */
  | { readonly kind: "invalid" }
  | { readonly kind: "linked-elsewhere" };

/** Input of {@link Store.registerDevice}. */
export interface RegisterDeviceInput {
  readonly subjectId: string;
  readonly deviceId: string;
  readonly platformId: string;
  /** Undefined keeps the current name (or empty for a new device). */
  readonly displayName: string | undefined;
  readonly now: Date;
}

/** Result of {@link Store.registerDevice}. */
export type RegisterDeviceResult =
  | { readonly kind: "registered" | "updated"; readonly device: DeviceRecord }
  | { readonly kind: "revoked"; readonly device: DeviceRecord }
  /** The id belongs to a device registered through another platform; nothing changed. */
  | { readonly kind: "other-platform"; readonly device: DeviceRecord }
  | { readonly kind: "subject-not-found" };

/** Input of {@link Store.createGrant}. */
export interface CreateGrantInput {
  readonly subjectId: string;
  readonly id: string;
  readonly grantorPlatformId: string;
  readonly granteePlatformId: string;
  readonly streamType: string;
  readonly access: GrantAccessLevel;
  readonly now: Date;
}

/** The durability level: `full` fsyncs every commit, `normal` survives process crashes. */
export type Durability = "normal" | "full";

// ---------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------

/** Everything the services persist. See the module comment for the conventions. */
export interface Store extends PortabilityStore, ReplicaStateStore {
  // --- lifecycle --------------------------------------------------------------------------

  /** The store epoch: subscription cursors minted under another epoch cannot be resumed. */
  getEpoch(): Promise<string>;
  /** A random secret kept with the data, for signing page tokens across restarts. */
  getInstanceSecret(): Promise<Uint8Array>;
  /** Registers a listener called after every commit that wrote events; returns an unsubscribe. */
  onNotification(listener: (notification: StoreNotification) => void): () => void;
  /** Flushes pending work and closes the store. */
  close(): Promise<void>;

  // --- subjects and account links --------------------------------------------------------

  /** The subject and link of a platform account, if it is linked. */
  findAccountLink(platformId: string, accountId: string): Promise<AccountLinkRecord | undefined>;
  /** Returns the account's subject, creating subject and link atomically if it has none. */
  createSubjectWithLink(input: CreateSubjectInput): Promise<SubjectWithLink>;
  getSubject(subjectId: string): Promise<SubjectRecord | undefined>;
  /** Whether any account of the platform is still linked to the subject (token re-check). */
  hasAccountLink(subjectId: string, platformId: string): Promise<boolean>;
  getAccountLink(subjectId: string, linkId: string): Promise<AccountLinkRecord | undefined>;
  /** Oldest first. */
  listAccountLinks(subjectId: string, page: PageRequest): Promise<Page<AccountLinkRecord>>;
  /** Refuses to remove the subject's last link. */
  deleteAccountLink(subjectId: string, linkId: string): Promise<"deleted" | "not-found" | "last-link">;
  /** Stores only the code's hash. */
  createLinkCode(input: {
    readonly subjectId: string;
    readonly platformId: string;
    readonly codeHash: Uint8Array;
    readonly now: Date;
    readonly expiresAt: Date;
  }): Promise<void>;
  /** Consumes the code and links the account in one transaction; first redemption wins. */
  redeemLinkCode(input: RedeemLinkCodeInput): Promise<RedeemLinkCodeResult>;

  // --- devices ----------------------------------------------------------------------------

  /** Registers a device or updates an active one's name; a revoked id stays revoked. */
  registerDevice(input: RegisterDeviceInput): Promise<RegisterDeviceResult>;
  getDevice(subjectId: string, deviceId: string): Promise<DeviceRecord | undefined>;
  /** Oldest first, active and revoked. */
  listDevices(subjectId: string, page: PageRequest): Promise<Page<DeviceRecord>>;
  /**
   * Revokes a device and logs `device-revoked` (which ends its subscriptions). Revoking a
   * revoked device changes nothing and logs nothing.
   */
  revokeDevice(subjectId: string, deviceId: string, now: Date): Promise<DeviceRecord | undefined>;

  // --- consent grants ---------------------------------------------------------------------

  createGrant(input: CreateGrantInput): Promise<GrantRecord>;
  getGrant(subjectId: string, grantId: string): Promise<GrantRecord | undefined>;
  /** Active grants the platform made or holds, oldest first. */
  listGrants(subjectId: string, platformId: string, page: PageRequest): Promise<Page<GrantRecord>>;
  /** Every active grant of the subject (access checks). */
  listActiveGrants(subjectId: string): Promise<GrantRecord[]>;
  /** Revokes a grant and logs `grant-revoked`; a revoked grant is returned unchanged. */
  revokeGrant(subjectId: string, grantId: string, now: Date): Promise<GrantRecord | undefined>;

  // --- erasure ----------------------------------------------------------------------------

  /** Deletes every row of the subject; notifies `subject-erased`. False if it did not exist. */
  eraseSubject(subjectId: string): Promise<boolean>;

  // --- streams ----------------------------------------------------------------------------

  /** Creates a stream and logs `stream-created`. */
  createStream(input: CreateStreamInput): Promise<CreateStreamResult>;
  getStream(subjectId: string, streamId: string): Promise<StreamRecord | undefined>;
  /** Streams the visibility admits, ordered by id; optionally of one type. */
  listStreams(
    subjectId: string,
    options: { readonly visibility: StreamVisibility; readonly type: string | undefined },
    page: PageRequest,
  ): Promise<Page<StreamRecord>>;
  /** Deletes a stream with its history, snapshots and outcomes; logs `stream-deleted`. */
  deleteStream(subjectId: string, streamId: string, now: Date): Promise<StreamRecord | undefined>;

  // --- deltas -----------------------------------------------------------------------------

  /**
   * Appends one batch exactly once. Sequence replay/gap, the conflict policy and the
   * expected version are decided inside the transaction, then `build` computes the deltas;
   * deltas, head, outcome and the `deltas-appended` event commit together. Concurrent
   * calls may share one transaction (group commit) but never each other's fate.
   */
  appendBatch(input: AppendInput): Promise<AppendResult>;
  /** Retained deltas with `afterVersion < version`, in order, at most `limit`. */
  listDeltas(
    subjectId: string,
    streamId: string,
    afterVersion: number,
    limit: number,
  ): Promise<DeltaRecord[]>;
  /** The chain hash at a retained version (genesis at 0, horizon hash at the horizon). */
  hashAtVersion(subjectId: string, streamId: string, version: number): Promise<Uint8Array | VersionCheck>;
  /** For JSON streams: the nearest stored state at or below `version` and the deltas after it. */
  loadStateBase(subjectId: string, streamId: string, version: number): Promise<StateBase | VersionCheck>;
  /**
   * Stores the canonical state of a JSON stream at a retained version (a base for later
   * reads); false when the stream is gone, is another stream now (`streamUid`), or the
   * version is no longer retained. Idempotent.
   */
  putJsonState(input: PutJsonStateInput): Promise<boolean>;

  // --- snapshots and compaction -----------------------------------------------------------

  /** Stores an uploaded opaque snapshot after `verify` accepted it. */
  putSnapshot(input: PutSnapshotInput): Promise<PutSnapshotResult>;
  /** The newest uploaded snapshot at or below a version. */
  findSnapshot(subjectId: string, streamId: string, atOrBelow: number): Promise<SnapshotRecord | undefined>;
  /** The bytes of an uploaded snapshot, chunk by chunk, without loading it whole. */
  readSnapshotChunks(subjectId: string, streamId: string, version: number): AsyncIterable<Uint8Array>;
  /** Streams (of any subject) holding more than `retain` deltas above their horizon, for retention. */
  listRetentionCandidates(retain: number, limit: number): Promise<StreamRecord[]>;
  /** Raises the horizon and discards deltas at or below it; logs `stream-compacted`. */
  compactStream(input: CompactInput): Promise<CompactResult>;

  // --- checkpoints and handoffs -----------------------------------------------------------

  /** Captures the selected streams' positions atomically. */
  createCheckpoint(input: CreateCheckpointInput): Promise<CreateCheckpointResult>;
  getCheckpoint(subjectId: string, checkpointId: string): Promise<CheckpointRecord | undefined>;
  /** Newest first. */
  listCheckpoints(subjectId: string, page: PageRequest): Promise<Page<CheckpointRecord>>;
  /** Deletes a checkpoint; its pending handoffs expire (logged as `handoff-resolved`). */
  deleteCheckpoint(subjectId: string, checkpointId: string, now: Date): Promise<boolean>;
  /** Offers a checkpoint and logs `handoff-offered`. */
  createHandoff(input: CreateHandoffInput): Promise<CreateHandoffResult>;
  /** Reads a handoff, expiring it first if its time has passed. */
  getHandoff(subjectId: string, handoffId: string, now: Date): Promise<HandoffRecord | undefined>;
  /** Accepts or declines an offered handoff; the first resolution wins. */
  resolveHandoff(input: ResolveHandoffInput): Promise<ResolveHandoffResult>;
  /** Expires every offered handoff whose time has passed; returns how many. */
  expireHandoffs(now: Date): Promise<number>;

  // --- event log --------------------------------------------------------------------------

  getEventBounds(subjectId: string): Promise<EventBounds>;
  /** Events with `afterSequence < sequence`, in order, at most `limit`. */
  readEvents(subjectId: string, afterSequence: number, limit: number): Promise<SubjectEvent[]>;
  /**
   * The still-existing streams with a `deltas-appended` event after `afterSequence` whose
   * batch reaches at or below the stream's current horizon, one entry per stream. Answers
   * in one query whether a cursor's backlog can still be delivered whole, however long it is.
   */
  findCompactedBatches(subjectId: string, afterSequence: number): Promise<CompactedBatchStream[]>;
  /** Keeps at most `keep` newest events per subject; returns how many were discarded. */
  pruneEvents(keep: number): Promise<number>;
}
