import { Status } from "nice-grpc-common";
import type { ContinuityClient } from "../client/continuity-client.js";
import { ContinuityError } from "../errors/continuity-error.js";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import {
  applyJsonDelta,
  canonicalJson,
  cloneJson,
  DiffNotExpressibleError,
  diffJsonStates,
  INITIAL_JSON_STATE,
  isMalformedPatchError,
  isPatchNotApplicableError,
  jsonEquals,
  materializeJsonState,
  parseJsonDocument,
  type JsonValue,
} from "../protocol/index.js";
import { createMemoryQueueStore, type QueueStore } from "../queue/queue-store.js";
import { createEmitter, type EventSource } from "./emitter.js";
import { openStreamCore } from "./open-core.js";
import {
  conflictPolicyName,
  encodingName,
  type ConflictPolicyName,
  type CreateStreamSpec,
  type StreamEncodingName,
} from "./resolve.js";
import { createStreamCore, type PendingOp, type StreamCodec, type StreamCore, type StreamCoreEvents, type StreamStatus } from "./stream-core.js";

/** Options of `openStream`. */
export interface OpenStreamOptions {
  /** Stream id (`course-42-progress`) or full name (`subjects/…/streams/…`). */
  readonly stream: string;
  /** Create the stream with this spec when it does not exist. Without it, a missing stream fails with NOT_FOUND. */
  readonly create?: CreateStreamSpec | undefined;
  /**
   * Where pending writes and the confirmed replica are persisted. Default: in memory. One
   * handle per stream and store: opening a second one before the first is closed fails with
   * FAILED_PRECONDITION / STREAM_ALREADY_OPEN, and a stored record written by a newer SDK
   * with FAILED_PRECONDITION / QUEUE_RECORD_UNSUPPORTED (it is left untouched).
   */
  readonly store?: QueueStore | undefined;
  /** Cancels opening. */
  readonly signal?: AbortSignal | undefined;
}

/** A change to a JSON stream: a function of a draft copy, or a patch document in the stream's encoding. */
export type JsonChange<T extends JsonValue> = ((draft: T) => T | void) | JsonValue;

/** Events of a JSON stream handle. */
export type JsonStreamEvents = StreamCoreEvents;

/**
 * A live, local replica of one JSON stream. Reads are synchronous (`state`); writes apply
 * at once and are sent in the background, surviving restarts when the store is durable.
 *
 * `T` is what the application says the stream holds; nothing checks it. A stream starts as
 * the empty object `{}` at version 0 (HASH-030), before any write, and any device
 * with write access may write something else, so declare `T`'s fields optional, or validate
 * `state`, rather than trust a field to be there.
 */
export interface JsonStream<T extends JsonValue = JsonValue> extends EventSource<JsonStreamEvents> {
  /** `subjects/{subject}/streams/{stream}`. */
  readonly name: string;
  /** The stream's stable uid. */
  readonly uid: string;
  /** Reverse-DNS type name. */
  readonly type: string;
  /** `json-patch` or `json-merge-patch`. */
  readonly encoding: StreamEncodingName;
  /** The stream's conflict policy (the handle always sends an expected version regardless). */
  readonly conflictPolicy: ConflictPolicyName;
  /**
   * Optimistic state: the confirmed state with this device's pending writes applied. The
   * value is deeply frozen — it is the replica itself, shared rather than copied on every
   * read — so change it through `update`, or `structuredClone` it for a mutable copy.
   * Typed `T` on the application's word: a stream nobody wrote yet is `{}`
   * (`status.confirmedVersion` 0), whatever `T` says.
   */
  readonly state: T;
  /** State as verified from the server's hash chain, without pending local writes. Deeply frozen, like `state`. */
  readonly confirmedState: T;
  /** Connectivity, queue length and versions. */
  readonly status: StreamStatus;
  /**
   * Applies a change locally at once and queues it for the server. A function receives a
   * deep copy it may mutate or replace; the handle sends the difference. When a concurrent
   * write from elsewhere wins, the function is run again on the new state (while the process
   * lives; after a restart the stored patch is re-applied instead). Resolves with the write's
   * id once the write is durably queued, or undefined when the change changed nothing.
   * Rejects, without queuing anything, with INVALID_ARGUMENT / MALFORMED_PAYLOAD for a patch
   * of the wrong shape, FAILED_PRECONDITION / PATCH_NOT_APPLICABLE for one that does not fit
   * the current state, and INVALID_ARGUMENT / CHANGE_NOT_EXPRESSIBLE when a merge-patch
   * stream is asked to hold a `null` member (RFC 7396 cannot express it).
   */
  update(change: JsonChange<T>): Promise<string | undefined>;
  /**
   * Resolves when every local write is acknowledged and every remote one applied. Rejects
   * with FAILED_PRECONDITION / HANDLE_CLOSED once the handle is closed.
   */
  settled(options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Fetches deltas this replica has not seen (a subscription does this by itself). Aborting
   * `signal` stops this call waiting, not a fetch others wait on.
   */
  refresh(options?: { signal?: AbortSignal }): Promise<void>;
  /** Sends pending writes now instead of after the current backoff, and resumes after a halt. */
  flush(): void;
  /** Stops sending; pending writes stay in the store for the next open. */
  close(): Promise<void>;
}

/**
 * Opens a JSON stream handle without a subscription: it learns about other devices' writes
 * when it flushes, on `refresh()` and on `settled()`. Use `createReplica` to keep handles
 * live. The state of a stream nobody wrote yet is `{}`, whatever `T` says (see `JsonStream`).
 *
 * Offline first: once the store has seen a session (any earlier online start), a stream the
 * store holds opens at once from it, with no call to the server — reads and writes work
 * with the network down, and the token exchange, `GetStream` and the catch-up run in the
 * background when the server can be reached, after which the queue flushes (each write
 * exactly once). Await `refresh()` or `settled()` to wait for the server's word. A stream the
 * store does not hold is looked up on the server; when the server cannot be reached and
 * `create` is given, it opens empty (`uid` "") and is created or found later. With nothing
 * stored, opening needs the server once and fails with UNAVAILABLE without it.
 *
 * @example
 * ```ts
 * const progress = await openStream<{ lesson?: number }>(client, {
 *   stream: "course-42-progress",
 *   create: { type: "org.example.course-progress", encoding: "json-merge-patch" },
 *   store: createFileQueueStore("./continuity-data"),
 * });
 * await progress.update((draft) => {
 *   draft.lesson = 4;
 * });
 * await progress.settled();
 * ```
 */
export async function openStream<T extends JsonValue = JsonValue>(client: ContinuityClient, options: OpenStreamOptions): Promise<JsonStream<T>> {
  return (await openJsonStreamWithCore<T>(client, options)).handle;
}

/** `openStream`, also returning the engine so a replica can feed it subscription events. */
export async function openJsonStreamWithCore<T extends JsonValue>(
  client: ContinuityClient,
  options: OpenStreamOptions,
): Promise<{ handle: JsonStream<T>; core: StreamCore<JsonValue> }> {
  const emitter = createEmitter<JsonStreamEvents>();
  const store = options.store ?? createMemoryQueueStore();
  const core = await openStreamCore<JsonValue>(client, {
    store,
    stream: options.stream,
    create: options.create === undefined ? undefined : { ...options.create, defaultEncoding: "json-merge-patch" },
    signal: options.signal,
    checkEncoding: (info) => {
      if (info.encoding === DeltaEncoding.DELTA_ENCODING_OPAQUE) {
        throw new ContinuityError({
          code: Status.FAILED_PRECONDITION,
          reason: "ENCODING_UNSUPPORTED",
          message: `${info.name} is an opaque stream; open it with openOpaqueStream`,
        });
      }
    },
    makeCore: (info, device) => createStreamCore<JsonValue>({ client, store, info, device, codec: createJsonCodec(info.encoding), emit: emitter.emit }),
  });
  const view = (): JsonValue => core.view();

  const handle: JsonStream<T> = {
    get name() {
      return core.info.name;
    },
    get uid() {
      return core.info.uid;
    },
    get type() {
      return core.info.type;
    },
    get encoding() {
      return encodingName(core.info.encoding);
    },
    get conflictPolicy() {
      return conflictPolicyName(core.info.conflictPolicy);
    },
    get state() {
      return deepFreeze(view()) as T;
    },
    get confirmedState() {
      return deepFreeze(core.confirmed()) as T;
    },
    get status() {
      return core.status();
    },
    async update(change) {
      try {
        return await enqueueChange(change);
      } catch (error) {
        throw asChangeError(error);
      }
    },
    settled: (settleOptions = {}) => core.settled(settleOptions.signal),
    refresh: (refreshOptions = {}) => core.catchUp(refreshOptions.signal),
    flush: () => core.kick(),
    close: () => core.close(),
    on: emitter.on,
  };

  async function enqueueChange(change: JsonChange<T>): Promise<string | undefined> {
    const current = view();
    let patch: JsonValue;
    let intent: PendingOp["intent"];
    if (typeof change === "function") {
      const run = (state: JsonValue): JsonValue => {
        const draft = cloneJson(state) as T;
        const result = change(draft);
        return result === undefined ? draft : result;
      };
      patch = diffJsonStates(current, run(current), core.info.encoding);
      intent = run as PendingOp["intent"];
    } else {
      // Validate now, so a malformed patch fails the caller instead of the flush loop.
      applyJsonDelta(current, core.info.encoding, change);
      patch = change;
    }
    if (isEmptyPatch(patch)) return undefined;
    const id = globalThis.crypto.randomUUID();
    await core.enqueue({ id, payload: canonicalJson(patch), intent });
    return id;
  }
  return { handle, core };
}

/**
 * Local refusals leave `update` as `ContinuityError`s too, with the reason the server would
 * give for the same payload, so callers handle one error type whether the check ran here or
 * there.
 */
function asChangeError(error: unknown): ContinuityError {
  if (isMalformedPatchError(error)) {
    return new ContinuityError({ code: Status.INVALID_ARGUMENT, reason: "MALFORMED_PAYLOAD", message: error.message, cause: error });
  }
  if (isPatchNotApplicableError(error)) {
    return new ContinuityError({ code: Status.FAILED_PRECONDITION, reason: "PATCH_NOT_APPLICABLE", message: error.message, cause: error });
  }
  if (error instanceof DiffNotExpressibleError) {
    // The SDK's own reason: RFC 7396 cannot set a member to null, so no payload was formed.
    return new ContinuityError({ code: Status.INVALID_ARGUMENT, reason: "CHANGE_NOT_EXPRESSIBLE", message: error.message, cause: error });
  }
  return ContinuityError.from(error);
}

/**
 * Freezes a state value in place. States are never mutated by the engine (every change
 * builds a new value), so a frozen top level means the whole tree was frozen before.
 */
function deepFreeze(value: JsonValue): JsonValue {
  if (value === null || typeof value !== "object" || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const child of Array.isArray(value) ? value : Object.values(value)) deepFreeze(child);
  return value;
}

function isEmptyPatch(patch: JsonValue): boolean {
  return (Array.isArray(patch) && patch.length === 0) || jsonEquals(patch, {});
}

/**
 * JSON state semantics for the stream engine. Rebase re-runs a write's function when it is
 * still in memory, so "add one to the counter" stays that after a concurrent write; a write
 * restored from the store is re-applied as the patch it was stored as.
 */
export function createJsonCodec(encoding: DeltaEncoding): StreamCodec<JsonValue> {
  return {
    // Shared, not copied: the constant is already frozen, and states are never mutated (every
    // change builds a new value), so handing it out is safe.
    initial: () => INITIAL_JSON_STATE,
    fromSnapshot: (bytes) => parseJsonDocument(bytes),
    // One copy of the state for the whole batch, not one per delta (a long catch-up).
    applyConfirmed: (state, deltas) => materializeJsonState(state, encoding, deltas.map((delta) => delta.payload)),
    view(base, ops) {
      let state = base;
      for (const op of ops) {
        try {
          state = applyJsonDelta(state, encoding, op.payload);
        } catch {
          // Shown without it until the next rebase decides its fate.
        }
      }
      return state;
    },
    rebase(base, ops) {
      const kept: PendingOp[] = [];
      const rejected: { op: PendingOp; error: unknown }[] = [];
      const satisfied: PendingOp[] = [];
      let state = base;
      for (const op of ops) {
        try {
          if (op.intent !== undefined) {
            const next = (op.intent as (state: JsonValue) => JsonValue)(state);
            const patch = diffJsonStates(state, next, encoding);
            if (isEmptyPatch(patch)) {
              // Someone else made the same change first: nothing left to send.
              satisfied.push(op);
              continue;
            }
            op.payload = canonicalJson(patch);
            state = next;
          } else {
            state = applyJsonDelta(state, encoding, op.payload);
          }
          kept.push(op);
        } catch (error) {
          rejected.push({ op, error });
        }
      }
      return { kept, rejected, satisfied };
    },
    encodeState: (state) => state,
    decodeState: (value) => value as JsonValue,
  };
}
