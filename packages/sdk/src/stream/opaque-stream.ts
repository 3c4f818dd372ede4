import { Status } from "nice-grpc-common";
import type { ContinuityClient } from "../client/continuity-client.js";
import { ContinuityError } from "../errors/continuity-error.js";
import type { SnapshotHeader } from "../gen/continuity/v1/stream_service.js";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { fromHex, snapshotHash } from "../protocol/index.js";
import { createMemoryQueueStore, type QueueStore } from "../queue/queue-store.js";
import { createEmitter, type EventSource } from "./emitter.js";
import { openStreamCore } from "./open-core.js";
import { conflictPolicyName, type ConflictPolicyName, type CreateStreamSpec } from "./resolve.js";
import { createStreamCore, type StreamCore, type StreamCoreEvents, type StreamStatus } from "./stream-core.js";

/** A verified delta of an opaque stream, written by another device or by this one in an earlier session. */
export interface OpaqueDelta {
  /** The delta's version. */
  readonly version: bigint;
  /** The bytes exactly as the writer sent them. */
  readonly payload: Uint8Array;
  /** `subjects/{subject}/devices/{device}` of the writer. */
  readonly device: string;
}

/** A verified snapshot an opaque replica was re-based on. */
export interface OpaqueSnapshot {
  /** The version the snapshot is at. */
  readonly version: bigint;
  /** The snapshot bytes as uploaded. */
  readonly state: Uint8Array;
}

/** Events of an opaque stream handle. */
export interface OpaqueStreamEvents extends StreamCoreEvents {
  /** A delta to apply to the application's own state (e.g. `Y.applyUpdate`). */
  delta: OpaqueDelta;
  /** The replica was re-based on a snapshot: replace the application's state with it. */
  snapshot: OpaqueSnapshot;
}

/** Options of `openOpaqueStream`. */
export interface OpenOpaqueStreamOptions {
  /** Stream id or full name. */
  readonly stream: string;
  /** Create the stream with this type (and policy) when it does not exist. */
  readonly create?: Omit<CreateStreamSpec, "encoding"> | undefined;
  /**
   * Where pending appends are persisted. Default: in memory. One handle per stream and store:
   * opening a second one before the first is closed fails with FAILED_PRECONDITION /
   * STREAM_ALREADY_OPEN.
   */
  readonly store?: QueueStore | undefined;
  /**
   * Receives every delta from the one the replica starts at, including those fetched while
   * opening — which is why it is an option and not only an event. This handle's own appends
   * are left out, even when a subscription delivers them before the server's answer: the
   * application already holds them.
   */
  readonly onDelta?: ((delta: OpaqueDelta) => void) | undefined;
  /** Receives the snapshot the replica starts from or is re-based on. */
  readonly onSnapshot?: ((snapshot: OpaqueSnapshot) => void) | undefined;
  /** Cancels opening. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * A replica of an opaque stream: the server orders and chains the bytes but cannot read
 * them, so the SDK hands each verified delta to the application (e.g. a CRDT) and queues the
 * application's appends with the same exactly-once flush as JSON streams. Appends are never
 * rebased — the bytes are resent after a conflict with the new expected version — because
 * the application's format (a CRDT update) is what makes concurrent appends commute.
 */
export interface OpaqueStream extends EventSource<OpaqueStreamEvents> {
  /** `subjects/{subject}/streams/{stream}`. */
  readonly name: string;
  /** The stream's stable uid. */
  readonly uid: string;
  /** Reverse-DNS type name. */
  readonly type: string;
  /** The stream's conflict policy. */
  readonly conflictPolicy: ConflictPolicyName;
  /** Connectivity, queue length and versions. */
  readonly status: StreamStatus;
  /** Queues bytes for appending; resolves with the write's id once it is durably queued. */
  append(payload: Uint8Array): Promise<string>;
  /**
   * Uploads the application's state as the snapshot at the replica's confirmed version, so
   * new devices and compaction need not replay every delta. The caller must pass the state
   * that corresponds to exactly `status.confirmedVersion`.
   */
  uploadSnapshot(state: Uint8Array, options?: { signal?: AbortSignal }): Promise<SnapshotHeader>;
  /**
   * Resolves when every local append is acknowledged and every remote delta delivered.
   * Rejects with FAILED_PRECONDITION / HANDLE_CLOSED once the handle is closed.
   */
  settled(options?: { signal?: AbortSignal }): Promise<void>;
  /** Fetches deltas this replica has not seen. Aborting `signal` stops this call waiting, not a fetch others wait on. */
  refresh(options?: { signal?: AbortSignal }): Promise<void>;
  /** Sends pending appends now. */
  flush(): void;
  /** Stops sending; pending appends stay in the store. */
  close(): Promise<void>;
}

/**
 * Opens an opaque stream handle.
 *
 * @example
 * ```ts
 * const doc = new Y.Doc();
 * const notes = await openOpaqueStream(client, {
 *   stream: "notes-yjs",
 *   create: { type: "org.example.notes", conflictPolicy: "allow-blind-append" },
 *   onDelta: (delta) => Y.applyUpdate(doc, delta.payload, "continuity"),
 * });
 * doc.on("update", (update, origin) => {
 *   if (origin !== "continuity") void notes.append(update);
 * });
 * ```
 */
export async function openOpaqueStream(client: ContinuityClient, options: OpenOpaqueStreamOptions): Promise<OpaqueStream> {
  return (await openOpaqueStreamWithCore(client, options)).handle;
}

/** `openOpaqueStream`, also returning the engine for a replica's subscription. */
export async function openOpaqueStreamWithCore(
  client: ContinuityClient,
  options: OpenOpaqueStreamOptions,
): Promise<{ handle: OpaqueStream; core: StreamCore<null> }> {
  const emitter = createEmitter<OpaqueStreamEvents>();
  if (options.onDelta !== undefined) emitter.on("delta", options.onDelta);
  if (options.onSnapshot !== undefined) emitter.on("snapshot", options.onSnapshot);
  const store = options.store ?? createMemoryQueueStore();
  const core = await openStreamCore<null>(client, {
    store,
    stream: options.stream,
    create: options.create === undefined ? undefined : { ...options.create, encoding: "opaque", defaultEncoding: "opaque" },
    signal: options.signal,
    checkEncoding: (info) => {
      if (info.encoding !== DeltaEncoding.DELTA_ENCODING_OPAQUE) {
        throw new ContinuityError({
          code: Status.FAILED_PRECONDITION,
          reason: "ENCODING_UNSUPPORTED",
          message: `${info.name} is a JSON stream; open it with openStream`,
        });
      }
    },
    makeCore: (info, device) =>
      createStreamCore<null>({
        client,
        store,
        info,
        device,
        codec: {
          initial: () => null,
          fromSnapshot: (state, version) => {
            emitter.emit("snapshot", { version, state });
            return null;
          },
          applyConfirmed: (state, deltas) => {
            // The application already holds its own writes; only others' reach it here.
            for (const delta of deltas) {
              if (!delta.own) emitter.emit("delta", { version: delta.version, payload: delta.payload, device: delta.device });
            }
            return state;
          },
          view: () => null,
          rebase: (_base, ops) => ({ kept: [...ops], rejected: [] }),
          encodeState: () => null,
          decodeState: () => null,
        },
        emit: (event, payload) => {
          emitter.emit(event, payload as never);
        },
      }),
  });

  const handle: OpaqueStream = {
    get name() {
      return core.info.name;
    },
    get uid() {
      return core.info.uid;
    },
    get type() {
      return core.info.type;
    },
    get conflictPolicy() {
      return conflictPolicyName(core.info.conflictPolicy);
    },
    get status() {
      return core.status();
    },
    async append(payload) {
      const id = globalThis.crypto.randomUUID();
      await core.enqueue({ id, payload: new Uint8Array(payload) });
      return id;
    },
    async uploadSnapshot(state, uploadOptions = {}) {
      const status = core.status();
      const headHash = fromHex(status.headHash);
      const { uid: streamUid, encoding } = core.info;
      const hash = snapshotHash({ streamUid, version: status.confirmedVersion, headHash, encoding, state });
      const header: SnapshotHeader = {
        stream: core.info.name,
        streamUid,
        version: status.confirmedVersion,
        headHash,
        encoding,
        sizeBytes: BigInt(state.length),
        snapshotHash: hash,
      };
      const chunkSize = 64 * 1024;
      async function* parts(): AsyncGenerator<{ part: { $case: "header"; value: SnapshotHeader } | { $case: "data"; value: Uint8Array } }> {
        yield { part: { $case: "header", value: header } };
        for (let offset = 0; offset < state.length; offset += chunkSize) {
          yield { part: { $case: "data", value: state.subarray(offset, offset + chunkSize) } };
        }
      }
      const response = await client.streams.uploadSnapshot(parts(), uploadOptions.signal === undefined ? {} : { signal: uploadOptions.signal });
      if (response.header === undefined) throw new ContinuityError({ code: Status.INTERNAL, message: "UploadSnapshot answered without a header" });
      return response.header;
    },
    settled: (settleOptions = {}) => core.settled(settleOptions.signal),
    refresh: (refreshOptions = {}) => core.catchUp(refreshOptions.signal),
    flush: () => core.kick(),
    close: () => core.close(),
    on: emitter.on,
  };
  return { handle, core };
}
