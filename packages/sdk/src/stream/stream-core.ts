import { Status } from "nice-grpc-common";
import type { ContinuityClient } from "../client/continuity-client.js";
import { abandonable, backoffDelayMs } from "../client/backoff.js";
import { ContinuityError, isAbortLike, isContinuityError } from "../errors/continuity-error.js";
import type { ConflictPolicy, DeltaEncoding } from "../gen/continuity/v1/types.js";
import type { AppendDeltasResponse, Delta } from "../gen/continuity/v1/stream_service.js";
import { bytesEqual, deltaHash, genesisHash, isPatchNotApplicableError, toHex, verifyChain } from "../protocol/index.js";
import type { QueueStore } from "../queue/queue-store.js";
import { decodeRecord, encodeRecord, recordKey, type StreamRecord } from "./record.js";
import { storeSession } from "./session.js";
import { fetchVerifiedSnapshot, integrity } from "./snapshot.js";

/** What the SDK needs to know about a stream to keep a replica of it. */
export interface StreamInfo {
  /** `subjects/{subject}/streams/{stream}`. */
  readonly name: string;
  /** The stable uid the hash chain commits to. */
  readonly uid: string;
  /** Reverse-DNS type name. */
  readonly type: string;
  /** Delta encoding. */
  readonly encoding: DeltaEncoding;
  /** Whether appends must name an expected version. */
  readonly conflictPolicy: ConflictPolicy;
}

/** A local write that the server has not acknowledged yet. */
export interface PendingOp {
  /** Local id, stable across restarts, to correlate events with writes. */
  readonly id: string;
  /** The delta payload as it will be sent (canonical JSON bytes, or opaque bytes). */
  payload: Uint8Array;
  /** The user's change as a function, when it is still in memory: re-run on rebase. */
  intent?: ((state: never) => unknown) | undefined;
  /**
   * The exact request once it was sent. Until a definite answer arrives it may have been
   * committed, so it is resent byte for byte — same client sequence, same expected version —
   * and never altered: that is what makes the flush exactly-once.
   */
  request?: { clientSequence: bigint; expectedVersion: bigint; payload: Uint8Array } | undefined;
}

/** A verified delta as a codec sees it. */
export interface ConfirmedDelta {
  /** The payload as committed (canonical JSON bytes, or opaque bytes). */
  readonly payload: Uint8Array;
  /** The stream version it created. */
  readonly version: bigint;
  /** True for this device's own write, which the application already holds. */
  readonly own: boolean;
  /** `subjects/{subject}/devices/{device}` that wrote it. */
  readonly device: string;
}

/** How one kind of stream (JSON, opaque) turns payloads into state. */
export interface StreamCodec<State> {
  /** State at version 0. */
  initial(): State;
  /** State from verified snapshot bytes at `version`. */
  fromSnapshot(bytes: Uint8Array, version: bigint): State;
  /**
   * The confirmed state after verified deltas, in order. A batch rather than one delta so a
   * long catch-up can copy the state once instead of once per delta. Throws for the first
   * unusable payload; `state` itself is never changed.
   */
  applyConfirmed(state: State, deltas: readonly ConfirmedDelta[]): State;
  /** The state the user sees: the confirmed state with pending ops applied, skipping any that do not apply. */
  view(base: State, ops: readonly PendingOp[]): State;
  /**
   * Re-derives pending ops on a new base; ops that cannot be carried over are returned as
   * rejected, and ops whose effect the new base already holds (re-running them changes
   * nothing) as satisfied.
   */
  rebase(
    base: State,
    ops: readonly PendingOp[],
  ): { kept: PendingOp[]; rejected: { op: PendingOp; error: unknown }[]; satisfied?: PendingOp[] | undefined };
  /** JSON form of the state for the persisted replica. */
  encodeState(state: State): unknown;
  /** Inverse of `encodeState`. */
  decodeState(value: unknown): State;
}

/** Observable status of a stream replica. */
export interface StreamStatus {
  /**
   * True when the last exchange with the server succeeded. A handle opened from the store
   * (offline first) is not connected until the server has confirmed the stream.
   */
  readonly connected: boolean;
  /** Local writes not yet acknowledged. */
  readonly pendingCount: number;
  /** Version of this device's newest acknowledged write, or undefined when none was acknowledged in this session. */
  readonly lastAcknowledgedVersion: bigint | undefined;
  /** Version of the confirmed state (everything up to it is verified and applied). */
  readonly confirmedVersion: bigint;
  /** Chain hash at `confirmedVersion`, lowercase hex. */
  readonly headHash: string;
  /** Set when flushing stopped on an error retrying cannot fix (revoked access, deleted stream). */
  readonly halted: ContinuityError | undefined;
}

/** Why the user-visible state of a stream changed. */
export interface StreamChange {
  /**
   * `local`: this device wrote; `remote`: another writer's delta was applied; `acknowledged`:
   * the server confirmed a local write — by its answer, or by the committed delta arriving
   * first through a subscription or a catch-up (this device's own deltas are never
   * `remote`); `rebase`: pending writes were re-derived or dropped after a conflict;
   * `snapshot`: the replica was re-based on a snapshot.
   */
  readonly source: "local" | "remote" | "acknowledged" | "rebase" | "snapshot";
}

/**
 * A local write that needs nothing more from the server: either it landed, or — when
 * `alreadyApplied` is true — a concurrent write from elsewhere made the same change first, so
 * re-deriving it on the new state produced an empty change and nothing was sent. Either way
 * the write's intent holds in the confirmed state and the op left the queue.
 */
export interface WriteAcknowledged {
  /** The id `update`/`append` resolved with. */
  readonly opId: string;
  /**
   * The version the write landed at; for an `alreadyApplied` write, the confirmed version at
   * which its effect was found to hold already.
   */
  readonly version: bigint;
  /** True when the answer was the server's stored outcome of an earlier attempt. */
  readonly replayed: boolean;
  /**
   * True when the write was not sent because the confirmed state already holds its effect
   * (another writer made the same change); it appends nothing to the stream.
   */
  readonly alreadyApplied: boolean;
}

/** A local write that was removed from the queue without being applied. */
export interface WriteRejected {
  /** The id `update`/`append` resolved with. */
  readonly opId: string;
  /**
   * `PATCH_NOT_APPLICABLE` (the write no longer fits the state after a concurrent change),
   * `CHANGE_FAILED` (the change function threw when re-run), `STREAM_REPLACED` (the write was
   * queued for a stream that has since been deleted and recreated under the same name, or
   * created offline for a stream another device had created with another encoding — it is
   * reported once the handle hears from the server, never before the open call returned,
   * so listeners attached right after opening receive it), or the server's refusal reason
   * (`MALFORMED_PAYLOAD`, `DELTA_TOO_LARGE`, `INVALID_FIELD`, …).
   */
  readonly reason: string;
  /** The underlying error. */
  readonly error: unknown;
}

/** Events every stream replica emits. */
export interface StreamCoreEvents {
  /** The user-visible state changed. */
  change: StreamChange;
  /** A local write was acknowledged. */
  acknowledged: WriteAcknowledged;
  /** A local write could not be carried over a conflict, or the server refused it for good. It is removed from the queue. */
  rejected: WriteRejected;
  /** Status changed (connectivity, queue length, versions). */
  status: StreamStatus;
  /** Something went wrong that the replica cannot fix by retrying: revoked access, failed verification. */
  error: ContinuityError;
}

/** Dependencies of `createStreamCore`. */
export interface StreamCoreOptions<State> {
  readonly client: ContinuityClient;
  readonly store: QueueStore;
  readonly info: StreamInfo;
  /** `subjects/{subject}/devices/{device}`: client sequences are per device. */
  readonly device: string;
  readonly codec: StreamCodec<State>;
  readonly emit: <Name extends keyof StreamCoreEvents>(event: Name, payload: StreamCoreEvents[Name]) => void;
  /** Page size of ListDeltas catch-ups. */
  readonly pageSize?: number | undefined;
}

/** What a handle opened from the store learns from the server once it can reach it. */
export interface BoundStream {
  /** `subjects/{subject}/devices/{device}` of the live session. */
  readonly device: string;
  /** The stream as the server has it. */
  readonly info: StreamInfo;
}

/** The engine under both stream handles; see `createStreamCore`. */
export interface StreamCore<State> {
  /** The stream as this replica knows it; `name` changes when the subject moves to another server. */
  readonly info: StreamInfo;
  /** Confirmed state: verified deltas up to `status.confirmedVersion`. */
  confirmed(): State;
  /** Confirmed state plus pending local writes. */
  view(): State;
  status(): StreamStatus;
  /** Loads the persisted replica (or a snapshot) and catches up. */
  start(signal?: AbortSignal): Promise<void>;
  /**
   * Opens from the store alone, with no call to the server: the persisted replica, or an
   * empty one for a stream queued for creation (`info.uid` empty until the server names it).
   * `bind` then runs in the background, retried with backoff while the server cannot be
   * reached; once it answers, the stream is checked against the record (`STREAM_REPLACED`
   * drops writes queued for a stream deleted meanwhile, `SESSION_CHANGED` halts a handle
   * opened for another device), the replica catches up and the queue flushes. Until then
   * nothing is sent, pushed deltas are left to that catch-up, and `settled`/`refresh` wait.
   */
  startLocal(bind: (signal: AbortSignal) => Promise<BoundStream>): Promise<void>;
  /** Queues a write; resolves once it is durably in the queue store. */
  enqueue(op: PendingOp): Promise<void>;
  /** Applies deltas pushed by a subscription; catches up by itself on a gap. */
  applyRemote(deltas: readonly Delta[]): Promise<void>;
  /**
   * Fetches deltas the replica has not seen. Concurrent callers share one fetch; each one's
   * signal abandons only that caller's wait.
   */
  catchUp(signal?: AbortSignal): Promise<void>;
  /**
   * Replaces the confirmed state by the server's snapshot at its head (subscription reset,
   * compaction). A snapshot older than the local state is ignored unless `replaceNewer`: the
   * server's history is behind this replica (restored from a backup), and the server's word
   * wins over a history it no longer has — and even then only while the replica still stands
   * where it did when it asked: a snapshot that arrives after the replica moved on (its own
   * writes acknowledged, the subject moved to another server) is ignored.
   */
  rebaseOnSnapshot(signal?: AbortSignal, replaceNewer?: boolean): Promise<void>;
  /** Wakes the flush loop now (connectivity came back) and clears a halt. */
  kick(): void;
  /**
   * Resolves when nothing is pending and the confirmed state has reached the server's head.
   * Rejects with FAILED_PRECONDITION / HANDLE_CLOSED once the handle is closed.
   */
  settled(signal?: AbortSignal): Promise<void>;
  /** Stops flushing and waits for the last persistence write. Pending writes stay in the store. */
  close(): Promise<void>;
}

const TRANSIENT = new Set<Status>([
  Status.UNAVAILABLE,
  Status.DEADLINE_EXCEEDED,
  Status.INTERNAL,
  Status.UNKNOWN,
  Status.CANCELLED,
  Status.RESOURCE_EXHAUSTED,
]);
const OP_REJECTIONS = new Set(["PATCH_NOT_APPLICABLE", "MALFORMED_PAYLOAD", "DELTA_TOO_LARGE", "BATCH_TOO_LARGE", "INVALID_FIELD"]);
/**
 * The largest client sequence a server judges (APPEND-018, docs/spec/appends.md); anything
 * above it is refused as INVALID_FIELD. No device reaches it, so when this device's sequence
 * is unknown and the server did not name it, sending it makes the server answer
 * CLIENT_SEQUENCE_GAP with the expected one.
 */
export const MAX_CLIENT_SEQUENCE = 2n ** 53n - 1n;
/** How many of this handle's acknowledged client sequences are remembered to recognise echoes of its own writes. */
const RECENT_OWN_SEQUENCES = 1024;

/**
 * Stream keys with an open handle, per store. Two handles on one stream and one store would
 * each persist their own queue over the other's and lose writes, so the second is refused.
 * Stores that name the same data (`QueueStore.identity`) count as one.
 */
const openKeys = new WeakMap<object, Set<string>>();
const openKeysByIdentity = new Map<string, Set<string>>();

function claimsOf(store: QueueStore): Set<string> {
  if (store.identity !== undefined) {
    let claims = openKeysByIdentity.get(store.identity);
    if (claims === undefined) openKeysByIdentity.set(store.identity, (claims = new Set()));
    return claims;
  }
  let claims = openKeys.get(store);
  if (claims === undefined) openKeys.set(store, (claims = new Set()));
  return claims;
}

function handleClosedError(name: string): ContinuityError {
  return new ContinuityError({ code: Status.FAILED_PRECONDITION, reason: "HANDLE_CLOSED", message: `${name}: the stream handle is closed` });
}

/**
 * The replica engine: a verified confirmed state, a persisted queue of pending writes, and a
 * flush loop with exactly-once effect.
 *
 * The loop sends the oldest pending write with `client_sequence = last acknowledged + 1` and
 * `expected_version = confirmed version`, after persisting that exact request. Until a
 * definite answer arrives the request is resent unchanged (the server then returns the stored
 * outcome if it had committed). On VERSION_CONFLICT the replica fetches what it missed,
 * re-derives every pending write on the new state (`codec.rebase`) and goes on; writes that no
 * longer apply are reported as `rejected`, never dropped silently. Every delta that enters the
 * confirmed state — pushed, fetched or acknowledged — is checked against the hash chain.
 */
export function createStreamCore<State>(options: StreamCoreOptions<State>): StreamCore<State> {
  const { client, store, codec, emit } = options;
  // Names carry the subject, which has another name on the server it moves to (`relocate`).
  let info: StreamInfo = { ...options.info };
  let device = options.device;
  let key = recordKey(device, info.name);
  const pageSize = options.pageSize ?? 500;
  let confirmedState = codec.initial();
  let confirmedVersion = 0n;
  let headHash: Uint8Array = new Uint8Array(32);
  // Computed on first use, not up front: a replica loaded from the store may never need it.
  let genesis: Uint8Array | undefined;
  const genesisHead = (): Uint8Array => (genesis ??= genesisHash({ uid: info.uid, type: info.type, encoding: info.encoding }));
  let pending: PendingOp[] = [];
  let lastAckedSequence: bigint | undefined = 0n;
  let lastAcknowledgedVersion: bigint | undefined;
  let connected = false;
  let halted: ContinuityError | undefined;
  let closed = false;
  // False while a handle opened from the store has not heard from the server (`startLocal`).
  let bound = true;
  let binder: ((signal: AbortSignal) => Promise<BoundStream>) | undefined;
  let binding: Promise<void> | undefined;
  let flushing: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  const closeController = new AbortController();
  let persistChain: Promise<void> = Promise.resolve();
  let catchingUp: Promise<void> | undefined;
  const waiters = new Set<() => void>();
  // Client sequences this handle acknowledged lately, oldest first: a delta carrying one of
  // them (or a pending request's) and this device is an echo of our own write.
  const recentOwnSequences = new Set<bigint>();
  const claims = claimsOf(store);
  let claimed = false;
  // A flush loop waiting out a backoff must not outlive the client it would call.
  const wakeOnClientClose = (): void => wake?.();
  client.closeSignal.addEventListener("abort", wakeOnClientClose, { once: true });
  // The client switches servers before the call that met SUBJECT_MOVED fails, so by the time
  // anything here reacts to that error the names are already those of the new server.
  const stopFollowing = client.on("moved", ({ subject }) => relocate(subject));

  /**
   * Renames the stream and the device into `subject` (their names on the server the subject
   * moved to) and moves the persisted record to its new key. Pending requests are kept as
   * they are: the new server imported each delta's device and client sequence, so resending
   * them is answered as a replay or applied once.
   */
  function relocate(subject: string): void {
    const name = `${subject}/streams/${lastSegment(info.name)}`;
    if (name === info.name || closed) return;
    const previousKey = key;
    info = { ...info, name };
    device = `${subject}/devices/${lastSegment(device)}`;
    key = recordKey(device, name);
    if (claimed) {
      claims.delete(previousKey);
      claims.add(key);
    }
    // A cold start must find the record under the new names: the stored session follows.
    const moved = persist()
      .then(() => store.remove(previousKey))
      .then(() => storeSession(store, { subject, device }));
    persistChain = moved.catch((error: unknown) => emit("error", ContinuityError.from(error)));
  }

  /** True when the client followed this SUBJECT_MOVED and the names here are the new ones. */
  function followed(failure: ContinuityError): boolean {
    const target = failure.metadata["subject"];
    if (target === undefined) return false;
    return subjectOf(info.name) === (target.startsWith("subjects/") ? target : `subjects/${target}`);
  }

  /**
   * Runs a read on the server the subject is on: a call that met SUBJECT_MOVED is said
   * again, with the new names, once the client has followed.
   */
  async function onCurrentServer<T>(call: () => Promise<T>): Promise<T> {
    for (let moves = 0; ; moves += 1) {
      try {
        return await call();
      } catch (error) {
        const failure = ContinuityError.from(error);
        if (failure.reason !== "SUBJECT_MOVED" || !followed(failure) || moves >= MAX_MOVES) throw failure;
      }
    }
  }

  const status = (): StreamStatus => ({
    connected,
    pendingCount: pending.length,
    lastAcknowledgedVersion,
    confirmedVersion,
    headHash: toHex(headHash),
    halted,
  });
  // The optimistic view is recomputed only after something changed, not on every read.
  let viewCache: { value: State } | undefined;
  const changed = (source: StreamChange["source"]): void => {
    viewCache = undefined;
    emit("change", { source });
    emit("status", status());
    for (const waiter of [...waiters]) waiter();
  };
  const setConnected = (value: boolean): void => {
    if (connected === value) return;
    connected = value;
    emit("status", status());
  };

  function snapshotRecord(): StreamRecord {
    return {
      format: 1,
      stream: { ...info },
      confirmed: { version: confirmedVersion, headHash, state: codec.encodeState(confirmedState) },
      lastAcknowledgedSequence: lastAckedSequence,
      pending: pending.map((op) => ({ id: op.id, payload: op.payload, request: op.request })),
    };
  }

  /** Persists the current replica. Writes are chained, and each writes the state as of when it runs. */
  function persist(): Promise<void> {
    const write = persistChain.then(() => store.write(key, encodeRecord(snapshotRecord())));
    persistChain = write.catch((error: unknown) => emit("error", ContinuityError.from(error)));
    return write;
  }

  /**
   * Applies deltas from the server (pushed or fetched) after verifying them against the
   * chain. This device's own writes among them whose answer has not arrived yet are
   * acknowledged here: the verified chain proves they were committed, and they are this
   * device's writes, not remote ones.
   */
  function applyVerified(deltas: readonly Delta[]): void {
    const fresh = deltas.filter((delta) => delta.version > confirmedVersion);
    if (fresh.length === 0) return;
    const verification = verifyChain({
      start: { version: confirmedVersion, hash: headHash },
      encoding: info.encoding,
      deltas: fresh,
    });
    if (!verification.ok) {
      if (verification.reason === "version-gap") throw new GapError();
      throw integrity(info.name, `delta ${verification.brokenVersion} does not verify (${verification.reason})`);
    }
    const confirmedDeltas = fresh.map((delta) => ({ payload: delta.payload, version: delta.version, own: isOwn(delta), device: delta.device }));
    confirmedState = codec.applyConfirmed(confirmedState, confirmedDeltas);
    confirmedVersion = verification.headVersion;
    headHash = verification.headHash;
    const landed = fresh.flatMap((delta) => {
      const op = pendingOpOf(delta);
      return op === undefined ? [] : [{ op, delta }];
    });
    for (const { op, delta } of landed) settle(op, delta.clientSequence, delta.version, false);
    changed(confirmedDeltas.every((delta) => delta.own) ? "acknowledged" : "remote");
  }

  /** The pending write a delta from the server is the commit of, if any. */
  function pendingOpOf(delta: Delta): PendingOp | undefined {
    if (delta.device !== device) return undefined;
    return pending.find(
      (op) => op.request !== undefined && op.request.clientSequence === delta.clientSequence && bytesEqual(op.request.payload, delta.payload),
    );
  }

  function isOwn(delta: Delta): boolean {
    if (delta.device !== device) return false;
    return recentOwnSequences.has(delta.clientSequence) || pendingOpOf(delta) !== undefined;
  }

  /** Takes an acknowledged write out of the queue and reports it; the caller persists. */
  function settle(op: PendingOp, clientSequence: bigint, version: bigint, replayed: boolean): void {
    pending = pending.filter((candidate) => candidate !== op);
    lastAckedSequence = clientSequence;
    lastAcknowledgedVersion = version;
    rememberOwnSequence(clientSequence);
    emit("acknowledged", { opId: op.id, version, replayed, alreadyApplied: false });
  }

  function rememberOwnSequence(sequence: bigint): void {
    recentOwnSequences.add(sequence);
    if (recentOwnSequences.size > RECENT_OWN_SEQUENCES) {
      const oldest = recentOwnSequences.values().next();
      if (oldest.done !== true) recentOwnSequences.delete(oldest.value);
    }
  }

  async function fetchMissing(signal: AbortSignal | undefined): Promise<void> {
    let rebased = false;
    let rewound = false;
    for (;;) {
      let response;
      // What the listing was asked from. Acknowledgments and pushes go on while it is on its
      // way, so by the time it answers the replica may stand above the head it reports.
      let asked = standing();
      try {
        response = await onCurrentServer(() => {
          asked = standing();
          return client.streams.listDeltas({ stream: info.name, afterVersion: asked.version, pageSize }, signal === undefined ? {} : { signal });
        });
      } catch (error) {
        const failure = ContinuityError.from(error);
        if (failure.reason === "VERSION_AHEAD_OF_HEAD" && !rewound) {
          if (await rewind(asked, signal)) rewound = true;
          continue;
        }
        // One re-base must bring the replica above the horizon; a second refusal means the
        // server has no snapshot to re-base on, and looping would never end.
        if (failure.reason !== "HISTORY_COMPACTED" || rebased) throw failure;
        rebased = true;
        await rebaseOnSnapshot(signal);
        continue;
      }
      setConnected(true);
      if (response.headVersion < asked.version) {
        // The server's history ends before ours (restored from an older backup). Waiting
        // cannot fix that, and every append would conflict forever: take the server's state.
        if (rewound) throw integrity(info.name, `the server's head ${response.headVersion} stays behind the replica's ${asked.version}`);
        if (await rewind(asked, signal)) rewound = true;
        continue;
      }
      // A head below the confirmed version now is only an answer overtaken by this replica's
      // own progress (an acknowledgment that arrived first), not a server behind it.
      applyVerified(response.deltas);
      if (response.deltas.length === 0 || confirmedVersion >= response.headVersion) return;
    }
  }

  /** Where the replica stands: what a decision taken on a server's answer was taken against. */
  function standing(): Standing {
    return { name: info.name, version: confirmedVersion, hash: headHash };
  }

  function stillAt(at: Standing): boolean {
    return at.name === info.name && at.version === confirmedVersion && bytesEqual(at.hash, headHash);
  }

  /**
   * Takes the server's snapshot over a newer local state, for a server whose history ends
   * before the replica's: only while the replica still stands where it stood when the server
   * said so. False when it moved on meanwhile (its own writes acknowledged, the subject moved
   * to another server): the server's word was about a state it no longer has, and the caller
   * asks again.
   */
  async function rewind(asked: Standing, signal: AbortSignal | undefined): Promise<boolean> {
    if (!stillAt(asked)) return false;
    return rebaseOnSnapshot(signal, true);
  }

  function catchUp(signal?: AbortSignal): Promise<void> {
    // Concurrent callers (subscription gap, conflict, settled) share one catch-up. It runs
    // until the handle closes; a caller's own signal only stops that caller waiting, so one
    // impatient caller cannot fail the others' catch-up.
    catchingUp ??= fetchMissing(closeController.signal)
      .then(() => persist())
      .finally(() => {
        catchingUp = undefined;
      });
    return abandonable(catchingUp, signal);
  }

  /** True when the replica took the server's state (a snapshot, or the genesis). */
  async function rebaseOnSnapshot(signal?: AbortSignal, replaceNewer = false): Promise<boolean> {
    // A snapshot answers for the moment it was asked; one that replaces a newer state must
    // still find the replica where it was then, or it would undo what came since.
    const asked = standing();
    let snapshot;
    try {
      snapshot = await onCurrentServer(() => fetchVerifiedSnapshot(client, { stream: info.name }, { signal, expected: { streamUid: info.uid } }));
    } catch (error) {
      const failure = ContinuityError.from(error);
      // An opaque stream with no uploaded snapshot starts from its genesis.
      if (failure.reason !== "SNAPSHOT_NOT_FOUND") throw failure;
      if (replaceNewer && confirmedVersion > 0n && stillAt(asked)) {
        // Nothing to re-base on: start over from the genesis and fetch the server's deltas.
        confirmedState = codec.initial();
        confirmedVersion = 0n;
        headHash = genesisHead();
        changed("snapshot");
        await persist();
        return true;
      }
      return false;
    }
    setConnected(true);
    if (snapshot.header.version < confirmedVersion && !(replaceNewer && stillAt(asked))) return false;
    confirmedState = codec.fromSnapshot(snapshot.state, snapshot.header.version);
    confirmedVersion = snapshot.header.version;
    headHash = new Uint8Array(snapshot.header.headHash);
    changed("snapshot");
    await persist();
    return true;
  }

  function claim(): void {
    if (claims.has(key)) {
      throw new ContinuityError({
        code: Status.FAILED_PRECONDITION,
        reason: "STREAM_ALREADY_OPEN",
        message: `${info.name} is already open on this queue store in this process; close that handle first or share it`,
      });
    }
    claims.add(key);
    claimed = true;
  }

  function release(): void {
    if (claimed) claims.delete(key);
    claimed = false;
  }

  async function start(signal?: AbortSignal): Promise<void> {
    claim();
    try {
      await load(signal);
    } catch (error) {
      release();
      throw error;
    }
  }

  function restore(record: StreamRecord): void {
    confirmedState = codec.decodeState(record.confirmed.state);
    confirmedVersion = record.confirmed.version;
    headHash = record.confirmed.headHash;
    lastAckedSequence = record.lastAcknowledgedSequence;
    pending = record.pending.map((op) => ({ id: op.id, payload: op.payload, request: op.request }));
  }

  async function startLocal(bind: (signal: AbortSignal) => Promise<BoundStream>): Promise<void> {
    claim();
    try {
      const stored = await store.read(key);
      const record = stored === undefined ? undefined : decodeRecord(stored, key);
      if (record !== undefined && record.stream.uid === info.uid) restore(record);
    } catch (error) {
      release();
      throw error;
    }
    bound = false;
    binder = bind;
    emit("status", status());
    startBinding();
  }

  function startBinding(): void {
    if (binding !== undefined || bound || closed) return;
    binding = bindLoop().finally(() => {
      binding = undefined;
    });
  }

  async function bindLoop(): Promise<void> {
    for (let failures = 0; !closed && !bound && binder !== undefined; ) {
      let live: BoundStream;
      try {
        live = await binder(closeController.signal);
      } catch (error) {
        if (closed) return;
        const failure = ContinuityError.from(error);
        if (failure.reason === "CLIENT_CLOSED" || !(TRANSIENT.has(failure.code) || failure.reason === "TOKEN_EXPIRED")) {
          transientOrHalt(failure);
          return;
        }
        setConnected(false);
        failures += 1;
        await pause(backoffDelayMs(failures, { baseDelayMs: 200, maxDelayMs: 10_000 }) + 50);
        continue;
      }
      if (closed) return;
      if (live.device !== device) {
        // The store belongs to another account (or device id) than the one signed in now.
        halt(
          new ContinuityError({
            code: Status.FAILED_PRECONDITION,
            reason: "SESSION_CHANGED",
            message: `${info.name} was opened from a store of ${device}, but the client is signed in as ${live.device}; give each account its own store`,
          }),
        );
        return;
      }
      const provisional = info.uid === "";
      adopt(live.info);
      await persist().catch(() => undefined);
      setConnected(true);
      emit("status", status());
      for (const waiter of [...waiters]) waiter();
      if (halted !== undefined) return;
      await catchUp(closeController.signal).catch(() => undefined);
      // Writes made before the stream's history was known were computed on an empty state:
      // re-derive them on what the server holds, as after a conflict.
      if (provisional && confirmedVersion > 0n && pending.some((op) => op.request === undefined)) {
        rebasePending();
        await persist().catch(() => undefined);
      }
      kick();
    }
  }

  /**
   * Takes the server's description of the stream. A stream queued for creation takes its uid
   * (and, when another device created it first, its history through the catch-up that
   * follows); a stream that is not the one the record was kept for — deleted and recreated
   * meanwhile — starts over and its queued writes are rejected as STREAM_REPLACED.
   */
  function adopt(server: StreamInfo): void {
    const previous = info;
    bound = true;
    const provisional = previous.uid === "";
    if (server.uid === previous.uid || (provisional && server.encoding === previous.encoding)) {
      info = { ...server, name: previous.name };
      if (provisional) {
        genesis = undefined;
        headHash = genesisHead();
      }
      return;
    }
    const replaced = new ContinuityError({
      code: Status.FAILED_PRECONDITION,
      reason: "STREAM_REPLACED",
      message: provisional
        ? `${previous.name} exists on the server with another encoding than it was created with offline; its queued writes were not sent`
        : `${previous.name} was replaced (uid ${previous.uid} is now ${server.uid}); its queued writes were not sent`,
    });
    const dropped = pending;
    info = { ...server, name: previous.name };
    genesis = undefined;
    pending = [];
    confirmedState = codec.initial();
    confirmedVersion = 0n;
    headHash = genesisHead();
    lastAckedSequence = 0n;
    for (const op of dropped) emit("rejected", { opId: op.id, reason: "STREAM_REPLACED", error: replaced });
    changed("snapshot");
    // The handle's codec reads the encoding it was opened with; another one needs a new handle.
    if (server.encoding !== previous.encoding) {
      halt(
        new ContinuityError({
          code: Status.FAILED_PRECONDITION,
          reason: "STREAM_REPLACED",
          message: `${previous.name} now has another encoding; open it again`,
        }),
      );
    }
  }

  /** Resolves once the handle has heard from the server; rejects when it halts or closes first. */
  function whenBound(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (bound) finish(resolve);
        else if (closed) finish(() => reject(handleClosedError(info.name)));
        else if (halted !== undefined) {
          const failure = halted;
          finish(() => reject(failure));
        }
      };
      const aborted = (): void => finish(() => reject(signal?.reason));
      const finish = (settle: () => void): void => {
        waiters.delete(check);
        signal?.removeEventListener("abort", aborted);
        settle();
      };
      waiters.add(check);
      signal?.addEventListener("abort", aborted, { once: true });
      if (signal?.aborted === true) aborted();
      else check();
    });
  }

  async function load(signal?: AbortSignal): Promise<void> {
    const stored = await store.read(key);
    const record = stored === undefined ? undefined : decodeRecord(stored, key);
    const sameStream = record !== undefined && record.stream.uid === info.uid;
    if (record !== undefined && sameStream) {
      restore(record);
    } else {
      headHash = genesisHead();
      await rebaseOnSnapshot(signal);
    }
    try {
      await catchUp(signal);
    } catch (error) {
      // A replica loaded from the store is usable offline; one without any local state is not.
      const failure = ContinuityError.from(error);
      if (!sameStream || !TRANSIENT.has(failure.code)) throw failure;
      setConnected(false);
    }
    if (record !== undefined && !sameStream && record.pending.length > 0) {
      // The stream was deleted and recreated: the queued writes were meant for a history that
      // no longer exists and must not land on the new one. Nobody can listen before the open
      // call returns, so they are reported on the next turn of the event loop.
      const replaced = new ContinuityError({
        code: Status.FAILED_PRECONDITION,
        reason: "STREAM_REPLACED",
        message: `${info.name} was replaced (uid ${record.stream.uid} is now ${info.uid}); its queued writes were not sent`,
      });
      const dropped = record.pending.map((op) => op.id);
      setTimeout(() => {
        for (const opId of dropped) emit("rejected", { opId, reason: "STREAM_REPLACED", error: replaced });
      }, 0);
    }
    emit("status", status());
    if (pending.length > 0) kick();
  }

  async function enqueue(op: PendingOp): Promise<void> {
    if (closed) throw handleClosedError(info.name);
    pending.push(op);
    changed("local");
    try {
      await persist();
    } catch (error) {
      // A write the caller was told failed must not go out anyway. It cannot have been sent
      // yet: the flush loop persists a request before sending it.
      if (op.request === undefined) {
        pending = pending.filter((candidate) => candidate !== op);
        changed("local");
      }
      throw ContinuityError.from(error);
    }
    kick();
  }

  function kick(): void {
    halted = undefined;
    if (wake !== undefined) {
      wake();
      return;
    }
    if (!bound) {
      startBinding();
      return;
    }
    if (flushing === undefined && !closed && pending.length > 0) {
      flushing = flushLoop().finally(() => {
        flushing = undefined;
        // A write queued while the loop was finishing would otherwise wait for the next kick.
        if (!closed && halted === undefined && pending.length > 0) kick();
      });
    }
  }

  async function flushLoop(): Promise<void> {
    let failures = 0;
    while (!closed && halted === undefined && pending.length > 0) {
      // Failures the loop does not classify (a store that cannot write) are reported and
      // retried like an outage; they must never escape as an unhandled rejection.
      const outcome = await flushOne().catch((error: unknown) => {
        emit("error", ContinuityError.from(error));
        return "retry-later" as const;
      });
      if (outcome === "retry-later") {
        if (closed) return;
        failures += 1;
        await pause(backoffDelayMs(failures, { baseDelayMs: 200, maxDelayMs: 10_000 }) + 50);
      } else {
        failures = 0;
      }
    }
  }

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  }

  async function flushOne(): Promise<"done" | "retry-later"> {
    const op = pending[0];
    if (op === undefined) return "done";
    if (op.request === undefined) {
      if (lastAckedSequence !== undefined && lastAckedSequence >= MAX_CLIENT_SEQUENCE) {
        halt(
          new ContinuityError({
            code: Status.OUT_OF_RANGE,
            reason: "CLIENT_SEQUENCE_EXHAUSTED",
            message: `${info.name}: this device has used every client sequence up to ${MAX_CLIENT_SEQUENCE}; use a new device id`,
          }),
        );
        return "done";
      }
      op.request = {
        clientSequence: lastAckedSequence === undefined ? MAX_CLIENT_SEQUENCE : lastAckedSequence + 1n,
        expectedVersion: confirmedVersion,
        payload: op.payload,
      };
      // Write-ahead: once the request may reach the server it must be resent as is. If the
      // store fails, nothing was sent and the request may be formed again later.
      try {
        await persist();
      } catch {
        op.request = undefined;
        return "retry-later";
      }
    }
    const request = op.request;
    let response: AppendDeltasResponse;
    try {
      response = await client.streams.appendDeltas(
        {
          stream: info.name,
          deltas: [{ payload: request.payload }],
          expectedVersion: request.expectedVersion,
          clientSequence: request.clientSequence,
        },
        { signal: closeController.signal },
      );
    } catch (error) {
      // The commit may have reached this replica by another way meanwhile (the answer lost).
      if (!pending.includes(op)) return "done";
      return handleAppendFailure(op, ContinuityError.from(error));
    }
    setConnected(true);
    await acknowledge(op, request, response);
    return "done";
  }

  async function acknowledge(
    op: PendingOp,
    request: NonNullable<PendingOp["request"]>,
    response: AppendDeltasResponse,
  ): Promise<void> {
    const receipt = response.receipts[0];
    if (receipt === undefined) throw integrity(info.name, "the append answer has no receipt");
    // A subscription or a catch-up may have brought the committed delta first and settled it.
    if (!pending.includes(op)) return;
    if (receipt.version === confirmedVersion + 1n) {
      const expected = deltaHash({ prevHash: headHash, version: receipt.version, encoding: info.encoding, payload: request.payload });
      if (!bytesEqual(expected, receipt.hash)) {
        halt(integrity(info.name, `the receipt hash of version ${receipt.version} does not match the delta that was sent`));
        return;
      }
      confirmedState = codec.applyConfirmed(confirmedState, [{ payload: request.payload, version: receipt.version, own: true, device }]);
      confirmedVersion = receipt.version;
      headHash = new Uint8Array(receipt.hash);
    } else if (receipt.version > confirmedVersion) {
      // The write landed after deltas this replica has not seen (a replayed outcome after a
      // restart): fetch them, the write included, through the verified path.
      await catchUp(closeController.signal).catch(() => undefined);
      if (!pending.includes(op)) return;
    }
    // Otherwise the write is already in the confirmed state.
    settle(op, request.clientSequence, receipt.version, response.replayed);
    changed("acknowledged");
    await persist();
  }

  async function handleAppendFailure(op: PendingOp, failure: ContinuityError): Promise<"done" | "retry-later"> {
    if (failure.reason === "CLIENT_CLOSED") return transientOrHalt(failure);
    if (closed || isAbortLike(failure.cause)) return "retry-later";
    if (failure.reason === "SUBJECT_MOVED") {
      // Resend the same request — same client sequence — to the server the client followed.
      if (followed(failure)) return "done";
      halt(failure);
      return "done";
    }
    if (failure.reason === "VERSION_CONFLICT") {
      setConnected(true);
      const expectedVersion = op.request?.expectedVersion ?? confirmedVersion;
      const hashBefore = headHash;
      op.request = undefined;
      try {
        await catchUp(closeController.signal);
      } catch (error) {
        return transientOrHalt(ContinuityError.from(error));
      }
      rebasePending();
      await persist();
      // A conflict that left the replica where the refused request stood would be answered
      // the same way at once: wait (with backoff) instead of hammering the server.
      const progressed = confirmedVersion !== expectedVersion || !bytesEqual(headHash, hashBefore);
      return progressed ? "done" : "retry-later";
    }
    if (failure.reason === "CLIENT_SEQUENCE_GAP" || failure.reason === "CLIENT_SEQUENCE_EXPIRED") {
      // EXPIRED: the number was acknowledged before the latest one this device wrote (a
      // reinstall, or a store restored from a backup), and its outcome is gone (APPEND-061).
      // Either way the stream says whether the write is in it.
      setConnected(true);
      const expected = parseSequence(failure.metadata["expectedSequence"]);
      if (expected === undefined) {
        op.request = undefined;
        halt(failure);
        return "done";
      }
      // The server's record of this device's sequence ends before ours (a probe, a restore,
      // or a history it imported that was compacted): the write may be in the stream
      // already. Re-read it — a delta of this device with the request's sequence and payload
      // settles the write — and re-apply what is still pending on what the stream holds.
      try {
        await catchUp(closeController.signal);
      } catch (error) {
        return transientOrHalt(ContinuityError.from(error));
      }
      lastAckedSequence = expected - 1n;
      if (pending.includes(op)) {
        op.request = undefined;
        rebasePending();
      }
      await persist();
      return "done";
    }
    if (failure.reason === "CLIENT_SEQUENCE_REUSED") {
      // The sequence was acknowledged for another request: this device's sequence state was
      // lost (a reinstall with the same device id). The server names the next one; a server
      // that does not is asked with a probe it must answer with CLIENT_SEQUENCE_GAP.
      setConnected(true);
      op.request = undefined;
      const expected = parseSequence(failure.metadata["expectedSequence"]);
      lastAckedSequence = expected === undefined ? undefined : expected - 1n;
      await persist();
      return "done";
    }
    if (failure.reason === "INVALID_FIELD" && failure.fieldViolations.some((violation) => violation.field === "client_sequence")) {
      // Not the write's fault: rejecting it would drop every later write the same way.
      halt(failure);
      return "done";
    }
    if (failure.reason !== undefined && OP_REJECTIONS.has(failure.reason)) {
      setConnected(true);
      pending = pending.filter((candidate) => candidate !== op);
      emit("rejected", { opId: op.id, reason: failure.reason, error: failure });
      changed("rebase");
      await persist();
      return "done";
    }
    return transientOrHalt(failure);
  }

  function transientOrHalt(failure: ContinuityError): "done" | "retry-later" {
    if (failure.reason === "CLIENT_CLOSED") {
      // The application closed the client: stop without calling it an error. The queue
      // stays in the store for the next session.
      halted = failure;
      emit("status", status());
      for (const waiter of [...waiters]) waiter();
      return "done";
    }
    if (TRANSIENT.has(failure.code) || failure.reason === "TOKEN_EXPIRED") {
      setConnected(false);
      return "retry-later";
    }
    halt(failure);
    return "done";
  }

  function halt(failure: ContinuityError): void {
    halted = failure;
    emit("error", failure);
    emit("status", status());
    for (const waiter of [...waiters]) waiter();
  }

  function rebasePending(): void {
    const { kept, rejected, satisfied = [] } = codec.rebase(confirmedState, pending);
    pending = kept;
    for (const op of satisfied) {
      emit("acknowledged", { opId: op.id, version: confirmedVersion, replayed: false, alreadyApplied: true });
    }
    for (const { op, error } of rejected) {
      const reason = isPatchNotApplicableError(error)
        ? "PATCH_NOT_APPLICABLE"
        : isContinuityError(error) && error.reason !== undefined
          ? error.reason
          : "CHANGE_FAILED";
      emit("rejected", { opId: op.id, reason, error });
    }
    changed("rebase");
  }

  async function applyRemote(deltas: readonly Delta[]): Promise<void> {
    // Not verifiable before the server confirmed which stream this is; the catch-up after
    // binding fetches them.
    if (!bound) return;
    try {
      applyVerified(deltas);
      await persist();
    } catch (error) {
      if (error instanceof GapError) {
        await catchUp(closeController.signal);
        return;
      }
      halt(ContinuityError.from(error));
    }
  }

  async function settled(signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      if (closed) throw handleClosedError(info.name);
      if (halted !== undefined) throw halted;
      if (!bound) {
        await whenBound(signal);
        continue;
      }
      if (pending.length === 0) {
        const { stream } = await onCurrentServer(() => client.streams.getStream({ name: info.name }, signal === undefined ? {} : { signal }));
        if (stream !== undefined && stream.headVersion > confirmedVersion) await catchUp(signal);
        if (pending.length === 0 && (stream === undefined || stream.headVersion <= confirmedVersion)) {
          await persistChain;
          return;
        }
        continue;
      }
      kick();
      await new Promise<void>((resolve, reject) => {
        const done = (): void => {
          waiters.delete(done);
          signal?.removeEventListener("abort", aborted);
          resolve();
        };
        const aborted = (): void => {
          waiters.delete(done);
          reject(signal?.reason);
        };
        waiters.add(done);
        signal?.addEventListener("abort", aborted, { once: true });
      });
    }
  }

  return {
    get info() {
      return info;
    },
    confirmed: () => confirmedState,
    view: () => (viewCache ??= { value: codec.view(confirmedState, pending) }).value,
    status,
    start,
    enqueue,
    applyRemote,
    async catchUp(signal?: AbortSignal) {
      if (!bound) await whenBound(signal);
      await catchUp(signal);
    },
    async rebaseOnSnapshot(signal?: AbortSignal, replaceNewer?: boolean) {
      // A reset before binding is covered by the catch-up that binding does.
      if (bound) await rebaseOnSnapshot(signal, replaceNewer);
    },
    startLocal,
    kick,
    settled,
    async close() {
      closed = true;
      closeController.abort();
      client.closeSignal.removeEventListener("abort", wakeOnClientClose);
      stopFollowing();
      wake?.();
      // settled() callers wake up, see the handle closed and reject instead of waiting forever.
      for (const waiter of [...waiters]) waiter();
      try {
        await flushing?.catch(() => undefined);
        await binding?.catch(() => undefined);
        await persistChain;
      } finally {
        release();
      }
    },
  };
}

/** Moves in a row a read follows before it gives up (a loop of redirects). */
const MAX_MOVES = 3;

function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}

/** `subjects/{subject}` of a stream or device name. */
function subjectOf(name: string): string {
  return name.split("/").slice(0, 2).join("/");
}

/** A sequence a server named in error metadata, when it is one this SDK may send. */
function parseSequence(text: string | undefined): bigint | undefined {
  if (text === undefined || !/^[0-9]{1,16}$/.test(text)) return undefined;
  const sequence = BigInt(text);
  return sequence >= 1n && sequence <= MAX_CLIENT_SEQUENCE ? sequence : undefined;
}

/** A replica's position: a decision on a server's answer holds only while it stays there. */
interface Standing {
  readonly name: string;
  readonly version: bigint;
  readonly hash: Uint8Array;
}

class GapError extends Error {
  override readonly name = "GapError";
}
