import { Status } from "nice-grpc-common";
import type { ContinuityClient, SubjectMovedEvent } from "../client/continuity-client.js";
import { ContinuityError } from "../errors/continuity-error.js";
import type { Checkpoint, Handoff } from "../gen/continuity/v1/checkpoint_service.js";
import type { AccessRevoked, StreamCreated, StreamDeleted, SubscribeResponse } from "../gen/continuity/v1/subscription_service.js";
import type { Delta } from "../gen/continuity/v1/stream_service.js";
import {
  createCheckpoint,
  loadCheckpointState,
  offerHandoff,
  resumeCheckpoint,
  type CheckpointStreamRef,
  type ResumeInfo,
  type ResumeResult,
} from "../handoff/checkpoints.js";
import type { JsonValue } from "../protocol/index.js";
import { createMemoryQueueStore, type QueueStore } from "../queue/queue-store.js";
import { createEmitter, type EventSource } from "../stream/emitter.js";
import { openJsonStreamWithCore, type JsonStream, type OpenStreamOptions } from "../stream/json-stream.js";
import { openOpaqueStreamWithCore, type OpaqueStream, type OpenOpaqueStreamOptions } from "../stream/opaque-stream.js";
import { streamNameOf } from "../stream/resolve.js";
import { openingSession, storeSession } from "../stream/session.js";
import type { StreamCore, StreamStatus } from "../stream/stream-core.js";
import { runSubscription, type SubscriptionLoop } from "./subscription.js";

/** A handoff offered to this device, with the two ways to answer it. */
export interface HandoffOffer {
  /** The handoff, in state OFFERED. */
  readonly handoff: Handoff;
  /** The offered checkpoint (digest verified when accepted). */
  readonly checkpoint: Checkpoint | undefined;
  /** Accepts on this device and loads the state at the checkpoint, verified. The first accept wins. */
  accept(options?: { signal?: AbortSignal }): Promise<ResumeResult>;
  /** Declines on this device. */
  decline(options?: { signal?: AbortSignal }): Promise<Handoff>;
}

/** Events of a replica. */
export interface ReplicaEvents {
  /** Another device offered a checkpoint to this one. */
  handoffOffered: HandoffOffer;
  /** A handoff was accepted, declined or expired. */
  handoffResolved: Handoff;
  /** A stream was created (by any device of any platform this one may read). */
  streamCreated: StreamCreated;
  /** A stream was deleted. */
  streamDeleted: StreamDeleted;
  /** This platform lost read access to some streams (a grant was revoked). */
  accessRevoked: AccessRevoked;
  /** The subscription was reset and every open stream re-based on a snapshot. */
  reset: SubscriptionResetEvent;
  /** The live connection came up or went down. */
  connection: ConnectionEvent;
  /** The subscription ended for good: the device was revoked or the subject erased. */
  ended: ContinuityError;
  /** A transient failure the replica retries after a delay; for logs. */
  retrying: RetryingEvent;
  /**
   * The subject moved to another server (`SUBJECT_MOVED`) and the replica followed it: the
   * client talks to the new address, the subscription resumed there, and every open handle
   * resends its pending writes there. Once per move.
   */
  moved: SubjectMovedEvent;
}

/** Payload of `ReplicaEvents.reset`. */
export interface SubscriptionResetEvent {
  /** `RESET_REASON_…` number from the server as text, or `INVALID_CURSOR`. */
  readonly reason: string;
}

/** Payload of `ReplicaEvents.connection`. */
export interface ConnectionEvent {
  /** True when the subscription just became live. */
  readonly connected: boolean;
}

/** Payload of `ReplicaEvents.retrying`. */
export interface RetryingEvent {
  /** Why the subscription dropped. */
  readonly error: ContinuityError;
  /** How long the replica waits before resubscribing, in milliseconds. */
  readonly delayMs: number;
}

/** What `Replica.handOff` returns. */
export interface HandOffResult {
  /** The checkpoint that was captured. */
  readonly checkpoint: Checkpoint;
  /** The offer, in state OFFERED. */
  readonly handoff: Handoff;
}

/** Options of `createReplica`. */
export interface ReplicaOptions {
  /** Persistence of queues, replicas and the cursor. Default: in memory. Use `createFileQueueStore` for offline durability. */
  readonly store?: QueueStore | undefined;
  /** Heartbeat interval asked of the server, in seconds (1–300). Default 15. */
  readonly heartbeatSeconds?: number | undefined;
  /** Cancels creation. */
  readonly signal?: AbortSignal | undefined;
}

/** What a checkpoint needs of a stream handle: any `JsonStream` or `OpaqueStream` fits. */
export interface CheckpointableStream {
  /** `subjects/{subject}/streams/{stream}`. */
  readonly name: string;
  /** The handle's status; `confirmedVersion` is what gets captured. */
  readonly status: StreamStatus;
  /** Resolves when the handle has nothing pending and has applied the server's head. */
  settled(options?: { signal?: AbortSignal }): Promise<void>;
}

/** Options of `Replica.checkpoint` and `Replica.handOff`. */
export interface ReplicaCheckpointOptions {
  /** Handles (captured at their confirmed version, after settling) or stream refs. */
  readonly streams: readonly (CheckpointableStream | CheckpointStreamRef)[];
  /** Where to resume. */
  readonly resume: ResumeInfo;
  /** A stable checkpoint id; empty lets the server mint one. */
  readonly checkpointId?: string | undefined;
  /** Cancels the call. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * A device's live view of its subject: one subscription for the whole device, dispatching
 * pushed deltas to the stream handles opened through it, plus checkpoints and handoffs.
 */
export interface Replica extends EventSource<ReplicaEvents> {
  /** `subjects/{subject}`; another name after the subject moved to another server. */
  readonly subject: string;
  /** `subjects/{subject}/devices/{device}`; renamed with the subject. */
  readonly device: string;
  /** True while the subscription is live. */
  readonly connected: boolean;
  /** Opens (or creates) a JSON stream kept live by the subscription. */
  openStream<T extends JsonValue = JsonValue>(options: Omit<OpenStreamOptions, "store">): Promise<JsonStream<T>>;
  /** Opens (or creates) an opaque stream kept live by the subscription. */
  openOpaqueStream(options: Omit<OpenOpaqueStreamOptions, "store">): Promise<OpaqueStream>;
  /** Settles the given handles, then captures them at their confirmed versions with a resume payload. */
  checkpoint(options: ReplicaCheckpointOptions): Promise<Checkpoint>;
  /** `checkpoint`, then offers it to other devices (or `targetDevice`). */
  handOff(
    options: ReplicaCheckpointOptions & { targetDevice?: string | undefined; ttlSeconds?: number | undefined },
  ): Promise<HandOffResult>;
  /** Loads the verified state of every stream at a checkpoint, with its resume payload. */
  resume(checkpointName: string, options?: { signal?: AbortSignal }): Promise<ResumeResult>;
  /** Accepts a handoff by name and loads its checkpoint's state. */
  acceptHandoff(handoffName: string, options?: { signal?: AbortSignal }): Promise<ResumeResult>;
  /** Declines a handoff by name. */
  declineHandoff(handoffName: string, options?: { signal?: AbortSignal }): Promise<Handoff>;
  /** Resolves once the subscription is live. */
  whenConnected(options?: { signal?: AbortSignal }): Promise<void>;
  /** Settles every open handle. */
  settled(options?: { signal?: AbortSignal }): Promise<void>;
  /** Stops the subscription and closes every handle; pending writes stay in the store. */
  close(): Promise<void>;
}

/**
 * Creates a replica and starts its subscription. Events are applied before the cursor is
 * persisted, and after a `reset` every open stream is re-based on a verified snapshot.
 *
 * Offline first: with a store that saw a session before, the replica is created from the
 * store with no call to the server, and its handles open from their records (see
 * `openStream`); the subscription connects when the server can be reached. If the account
 * signed in then is not the one the store belongs to, the replica ends and its handles halt
 * with FAILED_PRECONDITION / `SESSION_CHANGED`: give each account its own store. With
 * nothing stored, the first start needs the server and fails with UNAVAILABLE without it.
 *
 * @example
 * ```ts
 * const replica = await createReplica(client, { store: createFileQueueStore(dataDir) });
 * replica.on("handoffOffered", async (offer) => {
 *   const { resume } = await offer.accept();
 *   navigateTo(resume.resource, resume.position);
 * });
 * const progress = await replica.openStream<{ lesson: number }>({ stream: "course-42-progress" });
 * ```
 */
export async function createReplica(client: ContinuityClient, options: ReplicaOptions = {}): Promise<Replica> {
  const store = options.store ?? createMemoryQueueStore();
  // From the store when an earlier start saw the session: a cold start offline needs no call.
  let { subject, device } = await openingSession(client, store, options.signal);
  const emitter = createEmitter<ReplicaEvents>();
  // Keyed by stream id, the part of a stream's name that stays the same when the subject
  // moves to another server and every name is rewritten there.
  const cores = new Map<string, StreamCore<unknown>>();
  const reserved = new Set<string>();
  const stopFollowing = client.on("moved", (event) => {
    subject = event.subject;
    device = `${event.subject}/devices/${streamIdOf(device)}`;
    void storeSession(store, { subject, device }).catch(() => undefined);
    emitter.emit("moved", event);
  });
  // Events pushed for a stream while its handle is starting: `start` catches up to the head
  // it saw, and anything pushed after that would be lost if dropped here, so it is held and
  // handed to the engine once it is registered.
  const opening = new Map<string, OpeningStream>();
  let closed = false;
  let connected = false;
  let ended: ContinuityError | undefined;
  const connectionWaiters = new Set<() => void>();

  const acceptAndLoad = async (handoffName: string, signal: AbortSignal | undefined): Promise<ResumeResult> => {
    const response = await client.checkpoints.acceptHandoff({ name: handoffName }, signal === undefined ? {} : { signal });
    if (response.checkpoint === undefined) {
      throw new ContinuityError({ code: Status.INTERNAL, message: "AcceptHandoff answered without the checkpoint" });
    }
    return loadCheckpointState(client, response.checkpoint, { signal });
  };
  const decline = async (handoffName: string, signal: AbortSignal | undefined): Promise<Handoff> => {
    const response = await client.checkpoints.declineHandoff({ name: handoffName }, signal === undefined ? {} : { signal });
    if (response.handoff === undefined) throw new ContinuityError({ code: Status.INTERNAL, message: "DeclineHandoff answered without the handoff" });
    return response.handoff;
  };

  async function onEvent(message: SubscribeResponse): Promise<void> {
    const event = message.event;
    switch (event?.$case) {
      case "deltasAppended": {
        const first = event.value.deltas[0];
        if (first === undefined) return;
        const core = cores.get(streamIdOf(first.stream));
        if (core !== undefined) {
          await core.applyRemote(event.value.deltas);
          return;
        }
        const pending = opening.get(streamIdOf(first.stream));
        if (pending !== undefined) {
          if (pending.deltas.length + event.value.deltas.length > MAX_BUFFERED_DELTAS) pending.overflowed = true;
          else pending.deltas.push(...event.value.deltas);
        }
        return;
      }
      case "streamCreated":
        emitter.emit("streamCreated", event.value);
        return;
      case "streamDeleted":
        emitter.emit("streamDeleted", event.value);
        return;
      case "streamCompacted":
        return;
      case "handoffOffered": {
        const { handoff, checkpoint } = event.value;
        if (handoff === undefined) return;
        emitter.emit("handoffOffered", {
          handoff,
          checkpoint,
          accept: (answer = {}) => acceptAndLoad(handoff.name, answer.signal),
          decline: (answer = {}) => decline(handoff.name, answer.signal),
        });
        return;
      }
      case "handoffResolved":
        if (event.value.handoff !== undefined) emitter.emit("handoffResolved", event.value.handoff);
        return;
      case "accessRevoked":
        emitter.emit("accessRevoked", event.value);
        return;
      default:
        // Event kinds added in later protocol versions are skipped; the cursor still advances.
        return;
    }
  }

  const loop: SubscriptionLoop = runSubscription({
    client,
    subject: () => subject,
    store,
    cursorKey: () => `cursor/${device}`,
    heartbeatSeconds: options.heartbeatSeconds,
    handlers: {
      onEvent,
      async onReset(reason) {
        for (const pending of opening.values()) pending.reset = true;
        await Promise.all([...cores.values()].map((core) => core.rebaseOnSnapshot()));
        emitter.emit("reset", { reason: String(reason) });
      },
      onConnected(value) {
        if (connected === value) return;
        connected = value;
        emitter.emit("connection", { connected: value });
        if (value) {
          void checkSession();
          for (const waiter of [...connectionWaiters]) waiter();
          // Connectivity is back: send queued writes now, and fetch what changed while the
          // subscription was down but the cursor could not tell (streams opened meanwhile).
          for (const core of cores.values()) {
            core.kick();
            void core.catchUp().catch(() => undefined);
          }
        }
      },
      onEnded(error) {
        // Refused because the store's session is another account's: say that, not what the
        // server answered for a subject this token may not see.
        void sessionChanged().then((changed) => end(changed ?? error));
      },
      onRetry(error, delayMs) {
        emitter.emit("retrying", { error, delayMs });
      },
    },
  });

  /**
   * A replica opened from the store acts for the session the store last saw; once the server
   * answers, the client's live session must be that one. Another account signed in on a
   * store of the first would read and write the wrong subject's records: the replica ends.
   */
  async function sessionChanged(): Promise<ContinuityError | undefined> {
    let live;
    try {
      live = await client.session();
    } catch {
      return undefined;
    }
    if (live.subject === subject && live.device === device) return undefined;
    return new ContinuityError({
      code: Status.FAILED_PRECONDITION,
      reason: "SESSION_CHANGED",
      message: `the replica was opened from a store of ${device}, but the client is signed in as ${live.device ?? live.subject}; give each account its own store`,
    });
  }

  function end(error: ContinuityError): void {
    if (ended !== undefined) return;
    ended = error;
    emitter.emit("ended", error);
    for (const waiter of [...connectionWaiters]) waiter();
  }

  async function checkSession(): Promise<void> {
    const changed = await sessionChanged();
    if (changed === undefined || ended !== undefined || closed) return;
    end(changed);
    await loop.stop();
    connected = false;
    emitter.emit("connection", { connected: false });
  }

  async function settleRefs(refs: ReplicaCheckpointOptions["streams"], signal: AbortSignal | undefined): Promise<CheckpointStreamRef[]> {
    return Promise.all(
      refs.map(async (ref) => {
        if (typeof ref === "string" || !("settled" in ref)) return ref;
        await ref.settled(signal === undefined ? {} : { signal });
        return { stream: ref.name, version: ref.status.confirmedVersion };
      }),
    );
  }

  // Two engines on one stream would race for the same client sequences and record, so a
  // name is reserved before its handle starts and released when the handle closes.
  const reserve = (stream: string): string => {
    const id = streamIdOf(streamNameOf(subject, stream));
    if (reserved.has(id)) {
      throw new ContinuityError({
        code: Status.FAILED_PRECONDITION,
        message: `${streamNameOf(subject, stream)} is already open in this replica; share that handle instead of opening it again`,
      });
    }
    reserved.add(id);
    opening.set(id, { deltas: [], overflowed: false, reset: false });
    return id;
  };
  const release = (reservedName: string): void => {
    reserved.delete(reservedName);
    opening.delete(reservedName);
  };
  const track = <Handle extends { name: string; close(): Promise<void> }>(reservedName: string, handle: Handle, core: StreamCore<unknown>): Handle => {
    cores.set(reservedName, core);
    const held = opening.get(reservedName);
    opening.delete(reservedName);
    if (held !== undefined) replayHeld(core, held);
    const close = handle.close;
    return Object.assign(handle, {
      close: async () => {
        cores.delete(reservedName);
        release(reservedName);
        await close();
      },
    });
  };

  const replica: Replica = {
    get subject() {
      return subject;
    },
    get device() {
      return device;
    },
    get connected() {
      return connected;
    },
    async openStream<T extends JsonValue = JsonValue>(streamOptions: Omit<OpenStreamOptions, "store">) {
      const name = reserve(streamOptions.stream);
      try {
        const { handle, core } = await openJsonStreamWithCore<T>(client, { ...streamOptions, store });
        return track(name, handle, core as StreamCore<unknown>);
      } catch (error) {
        release(name);
        throw error;
      }
    },
    async openOpaqueStream(streamOptions) {
      const name = reserve(streamOptions.stream);
      try {
        const { handle, core } = await openOpaqueStreamWithCore(client, { ...streamOptions, store });
        return track(name, handle, core as StreamCore<unknown>);
      } catch (error) {
        release(name);
        throw error;
      }
    },
    async checkpoint(checkpointOptions) {
      const streams = await settleRefs(checkpointOptions.streams, checkpointOptions.signal);
      return createCheckpoint(client, {
        streams,
        resume: checkpointOptions.resume,
        checkpointId: checkpointOptions.checkpointId,
        signal: checkpointOptions.signal,
      });
    },
    async handOff(handOffOptions) {
      const checkpoint = await replica.checkpoint(handOffOptions);
      const handoff = await offerHandoff(client, {
        checkpoint: checkpoint.name,
        targetDevice: handOffOptions.targetDevice,
        ttlSeconds: handOffOptions.ttlSeconds,
        signal: handOffOptions.signal,
      });
      return { checkpoint, handoff };
    },
    resume: (checkpointName, resumeOptions = {}) => resumeCheckpoint(client, checkpointName, resumeOptions),
    acceptHandoff: (handoffName, answer = {}) => acceptAndLoad(handoffName, answer.signal),
    declineHandoff: (handoffName, answer = {}) => decline(handoffName, answer.signal),
    whenConnected(waitOptions = {}) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (connected) finish(resolve);
          else if (ended !== undefined) finish(() => reject(ended));
          else if (closed) finish(() => reject(new ContinuityError({ code: Status.CANCELLED, message: "The replica was closed" })));
        };
        const onAbort = (): void => finish(() => reject(waitOptions.signal?.reason));
        const finish = (settle: () => void): void => {
          connectionWaiters.delete(check);
          waitOptions.signal?.removeEventListener("abort", onAbort);
          settle();
        };
        connectionWaiters.add(check);
        waitOptions.signal?.addEventListener("abort", onAbort, { once: true });
        check();
      });
    },
    async settled(settleOptions = {}) {
      await Promise.all([...cores.values()].map((core) => core.settled(settleOptions.signal)));
    },
    async close() {
      closed = true;
      stopFollowing();
      await loop.stop();
      if (connected) {
        connected = false;
        emitter.emit("connection", { connected: false });
      }
      for (const waiter of [...connectionWaiters]) waiter();
      await Promise.all([...cores.values()].map((core) => core.close()));
      cores.clear();
      reserved.clear();
    },
    on: emitter.on,
  };
  return replica;
}

/** The last segment of a stream (or device) name: its id, the same on every server. */
function streamIdOf(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}

/** Bound of what is held for one starting stream; past it the engine simply catches up. */
const MAX_BUFFERED_DELTAS = 10_000;

/** What arrived for a stream while its handle was starting. */
interface OpeningStream {
  /** Deltas pushed meanwhile, in arrival order; may overlap what `start` fetched. */
  readonly deltas: Delta[];
  /** True when more arrived than is held: the engine must fetch instead. */
  overflowed: boolean;
  /** True when the subscription was reset meanwhile: the engine must re-base, then catch up. */
  reset: boolean;
}

/**
 * Hands an engine what was pushed while it started. The engine skips versions it already has
 * and catches up on a gap, so the held deltas only need de-duplicating and ordering. It runs
 * synchronously up to the engine's own verification, before any later event can interleave.
 */
function replayHeld(core: StreamCore<unknown>, held: OpeningStream): void {
  if (held.reset) {
    // What was held may predate the reset; the snapshot and a catch-up cover it all.
    void core
      .rebaseOnSnapshot()
      .then(() => core.catchUp())
      .catch(() => undefined);
    return;
  }
  if (held.overflowed) {
    void core.catchUp().catch(() => undefined);
    return;
  }
  if (held.deltas.length === 0) return;
  const byVersion = new Map<bigint, Delta>();
  for (const delta of held.deltas) byVersion.set(delta.version, delta);
  const ordered = [...byVersion.values()].sort((a, b) => (a.version < b.version ? -1 : a.version > b.version ? 1 : 0));
  void core.applyRemote(ordered).catch(() => undefined);
}
