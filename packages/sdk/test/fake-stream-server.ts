import { createHash } from "node:crypto";
import { createServer, ServerError, Status, type CallContext, type Server } from "nice-grpc";
import { BadRequest, ErrorInfo, errorDetailsServerMiddleware, RichServerError } from "nice-grpc-error-details";
import {
  StreamServiceDefinition,
  type AppendDeltasResponse,
  type Delta,
  type StreamServiceImplementation,
} from "../src/gen/continuity/v1/stream_service.js";
import {
  ResetReason,
  SubscriptionServiceDefinition,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../src/gen/continuity/v1/subscription_service.js";
import { TokenServiceDefinition } from "../src/gen/continuity/v1/token_service.js";
import { ConflictPolicy, DeltaEncoding } from "../src/gen/continuity/v1/types.js";
import {
  applyJsonDelta,
  canonicalJson,
  deltaHash,
  genesisHash,
  INITIAL_JSON_STATE,
  isMalformedPatchError,
  isPatchNotApplicableError,
  parseJsonDocument,
  snapshotHash,
  toHex,
  type JsonValue,
} from "../src/protocol/index.js";

/**
 * A deliberately small, in-memory StreamService (and SubscriptionService, for the deltas it
 * commits) for unit tests of the SDK's flush and subscription loops. It follows the append
 * rules of the design note (sequence range, replay, reuse, gap, conflict, patch application)
 * and can fail on purpose — answer UNAVAILABLE after committing, be "down", or hand its
 * subject to another fake and answer SUBJECT_MOVED — which the reference server cannot be
 * told to do. Integration tests use the real server.
 */
export interface FakeStreamServer {
  readonly address: string;
  /** `subjects/{subject}`: the one subject this server holds. */
  readonly subject: string;
  /** ExchangeToken calls answered with a token. */
  readonly exchanges: number;
  /** Subscribe calls that reached the handler, with the cursor each one asked for. */
  readonly subscribeCursors: readonly string[];
  /**
   * Hands the subject to `target` as a live migration's switch would — every stream with
   * its uid, versions and hashes, every delta with its device and client sequence, renamed
   * into the target's subject — and from then on answers every call, token exchanges
   * included, with FAILED_PRECONDITION / SUBJECT_MOVED naming the target; open
   * subscriptions end with it. Without `sequences` the target keeps no client sequences, as
   * after compaction, and answers resent writes with CLIENT_SEQUENCE_GAP.
   */
  moveTo(target: FakeStreamServer, options?: { sequences?: boolean }): void;
  /** Used by `moveTo` on the target. */
  importFrom(source: ExportedSubject, options: { sequences: boolean }): void;
  /** Every stored delta by stream name. */
  readonly deltas: Map<string, Delta[]>;
  /** The JSON state at the head of a stream. */
  headState(name: string): JsonValue;
  /** While true every call fails with UNAVAILABLE. */
  down: boolean;
  /** The next this-many appends commit and then answer UNAVAILABLE, as if the answer was lost. */
  loseAnswers: number;
  /**
   * ListDeltas after a version beyond the head fails with OUT_OF_RANGE / VERSION_AHEAD_OF_HEAD,
   * as the protocol says; while this is true it answers an empty page instead, as a lenient
   * server might.
   */
  lenientListing: boolean;
  /** The next this-many appends answer VERSION_CONFLICT at the current head without committing. */
  forceConflicts: number;
  /**
   * While true CLIENT_SEQUENCE_REUSED carries only `clientSequence`, as servers did before
   * `expectedSequence` was specified for it.
   */
  reuseWithoutExpectedSequence: boolean;
  /**
   * Holds the answer of the next `method` call: it is computed as the call arrives (the
   * state then), `reached` resolves, and it is sent only on `release()` — a slow answer, as a
   * loaded server or network gives, at a precise point. A call held once the subject moved
   * still answers what it computed, as a read that passed a source's door before the switch.
   */
  holdNextAnswer(method: "listDeltas" | "getSnapshot"): HeldAnswer;
  /** Number of AppendDeltas calls that reached the handler. */
  appendCalls: number;
  /** Client sequences per (device, stream) as the server acknowledged them. */
  readonly sequences: Map<string, bigint>;
  shutdown(): Promise<void>;
}

/** See `FakeStreamServer.holdNextAnswer`. */
export interface HeldAnswer {
  /** Resolves once the held call's answer was computed. */
  readonly reached: Promise<void>;
  release(): void;
}

export interface FakeStream {
  name: string;
  uid: string;
  type: string;
  encoding: DeltaEncoding;
  conflictPolicy: ConflictPolicy;
  states: JsonValue[];
  deltas: Delta[];
  hashes: Uint8Array[];
}

/** What `moveTo` hands from one fake to another. */
export interface ExportedSubject {
  readonly subject: string;
  readonly streams: readonly FakeStream[];
}

let nextServerId = 0;

function fail(code: Status, reason: string, metadata: Record<string, string> = {}): never {
  throw new RichServerError(code, reason, [ErrorInfo.fromPartial({ reason, domain: "continuity.v1", metadata })]);
}

/** The largest client sequence the reference server judges (APPEND-018). */
const MAX_CLIENT_SEQUENCE = 2n ** 53n - 1n;

function invalidField(field: string, description: string): never {
  throw new RichServerError(Status.INVALID_ARGUMENT, `${field} ${description}`, [
    ErrorInfo.fromPartial({ reason: "INVALID_FIELD", domain: "continuity.v1" }),
    BadRequest.fromPartial({ fieldViolations: [{ field, description }] }),
  ]);
}

export async function startFakeStreamServer(options: { subject?: string } = {}): Promise<FakeStreamServer> {
  const SUBJECT = options.subject ?? "subjects/s1";
  const serverId = `f${(nextServerId += 1)}`;
  const streams = new Map<string, FakeStream>();
  // An outcome stored by an append carries its request's fingerprint; one rebuilt from
  // imported deltas knows only the payloads (PORT-027), so a resend is judged by those.
  const outcomes = new Map<string, { fingerprint?: string; payloads?: string; response: AppendDeltasResponse }>();
  const sequences = new Map<string, bigint>();
  let moved: { target: string; subject: string } | undefined;
  // Committed batches as subscription events, numbered from 0; cursors are `epoch:count`.
  const epoch = `epoch-${serverId}`;
  const events: SubscribeResponse[] = [];
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const listener of [...listeners]) listener();
  };
  const subscribeCursors: string[] = [];
  let exchanges = 0;
  const heldAnswers = new Map<string, { reached: () => void; released: Promise<void> }>();
  const holdAnswer = async (method: string): Promise<void> => {
    const held = heldAnswers.get(method);
    if (held === undefined) return;
    heldAnswers.delete(method);
    held.reached();
    await held.released;
  };
  // Tokens name the server that issued them: one from another server is refused, so a
  // client that followed a move must exchange a token on the new server.
  const deviceOf = (context: CallContext): string => {
    const token = context.metadata.get("authorization")?.replace("Bearer ", "") ?? "";
    const [issuer, deviceId] = token.split(".");
    if (issuer !== `token-${serverId}` || deviceId === undefined) fail(Status.UNAUTHENTICATED, "TOKEN_INVALID");
    return `${SUBJECT}/devices/${deviceId}`;
  };
  const payloadsOf = (deltas: readonly { payload: Uint8Array }[]): string => deltas.map((d) => toHex(d.payload)).join(",");
  const find = (name: string): FakeStream => streams.get(name) ?? fail(Status.NOT_FOUND, "STREAM_NOT_FOUND");
  const toStream = (stream: FakeStream) => ({
    name: stream.name,
    uid: stream.uid,
    type: stream.type,
    encoding: stream.encoding,
    conflictPolicy: stream.conflictPolicy,
    headVersion: BigInt(stream.deltas.length),
    headHash: Buffer.from(stream.hashes.at(-1) ?? new Uint8Array(32)),
  });

  const implementation: Partial<StreamServiceImplementation> = {
    async createStream(request) {
      const name = `${request.parent}/streams/${request.streamId}`;
      if (streams.has(name)) fail(Status.ALREADY_EXISTS, "STREAM_ALREADY_EXISTS");
      const stream: FakeStream = {
        name,
        uid: "0b6a2f9e-8a4e-4a53-9b7a-2d4f7c1e9a10".replace("10", String(streams.size).padStart(2, "0")),
        type: request.stream?.type ?? "",
        encoding: request.stream?.encoding ?? DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH,
        conflictPolicy: request.stream?.conflictPolicy ?? ConflictPolicy.CONFLICT_POLICY_REQUIRE_EXPECTED_VERSION,
        states: [INITIAL_JSON_STATE],
        deltas: [],
        hashes: [],
      };
      stream.hashes.push(genesisHash({ uid: stream.uid, type: stream.type, encoding: stream.encoding }));
      streams.set(name, stream);
      return { stream: toStream(stream) };
    },
    async getStream(request, context) {
      deviceOf(context);
      return { stream: toStream(find(request.name)) };
    },
    async appendDeltas(request, context) {
      server.appendCalls += 1;
      // Validation comes before the stream lookup, as in the reference server (APPEND-050).
      if (request.clientSequence < 1n) invalidField("client_sequence", "must be at least 1");
      if (request.clientSequence > MAX_CLIENT_SEQUENCE) invalidField("client_sequence", `must be at most ${MAX_CLIENT_SEQUENCE}`);
      const stream = find(request.stream);
      const device = deviceOf(context);
      const key = `${device}|${stream.name}`;
      const fingerprint = createHash("sha256")
        .update(JSON.stringify([request.stream, request.expectedVersion?.toString() ?? null, request.deltas.map((d) => toHex(d.payload))]))
        .digest("hex");
      const last = sequences.get(key) ?? 0n;
      if (request.clientSequence <= last) {
        const stored = outcomes.get(`${key}|${request.clientSequence}`);
        if (stored !== undefined && (stored.fingerprint === fingerprint || stored.payloads === payloadsOf(request.deltas))) {
          return { ...stored.response, replayed: true };
        }
        const metadata: Record<string, string> = { clientSequence: String(request.clientSequence) };
        if (!server.reuseWithoutExpectedSequence) metadata["expectedSequence"] = String(last + 1n);
        fail(Status.FAILED_PRECONDITION, "CLIENT_SEQUENCE_REUSED", metadata);
      }
      if (request.clientSequence > last + 1n) {
        fail(Status.FAILED_PRECONDITION, "CLIENT_SEQUENCE_GAP", { expectedSequence: String(last + 1n) });
      }
      const head = BigInt(stream.deltas.length);
      if (server.forceConflicts > 0) {
        server.forceConflicts -= 1;
        fail(Status.ABORTED, "VERSION_CONFLICT", { headVersion: String(head), headHash: toHex(stream.hashes.at(-1)!) });
      }
      if (request.expectedVersion !== undefined && request.expectedVersion !== head) {
        fail(Status.ABORTED, "VERSION_CONFLICT", { headVersion: String(head), headHash: toHex(stream.hashes.at(-1)!) });
      }
      let state: JsonValue = stream.states.at(-1)!;
      const payloads: Uint8Array[] = [];
      for (const [index, delta] of request.deltas.entries()) {
        if (stream.encoding === DeltaEncoding.DELTA_ENCODING_OPAQUE) {
          payloads.push(new Uint8Array(delta.payload));
          continue;
        }
        try {
          const document = parseJsonDocument(delta.payload);
          state = applyJsonDelta(state, stream.encoding, document);
          payloads.push(canonicalJson(document));
        } catch (error) {
          if (isPatchNotApplicableError(error)) fail(Status.FAILED_PRECONDITION, "PATCH_NOT_APPLICABLE", { index: String(index) });
          if (isMalformedPatchError(error)) fail(Status.INVALID_ARGUMENT, "MALFORMED_PAYLOAD", { index: String(index) });
          throw error;
        }
      }
      const receipts = payloads.map((payload) => {
        const version = BigInt(stream.deltas.length + 1);
        const prevHash = stream.hashes.at(-1)!;
        const hash = deltaHash({ prevHash, version, encoding: stream.encoding, payload });
        stream.deltas.push({
          stream: stream.name,
          streamUid: stream.uid,
          version,
          encoding: stream.encoding,
          payload: Buffer.from(payload),
          prevHash: Buffer.from(prevHash),
          hash: Buffer.from(hash),
          device,
          clientSequence: request.clientSequence,
          batchFirstVersion: head + 1n,
          batchSize: payloads.length,
          commitTime: new Date(),
        });
        stream.hashes.push(hash);
        return { version, hash: Buffer.from(hash) };
      });
      stream.states.push(state);
      const response: AppendDeltasResponse = {
        receipts,
        headVersion: BigInt(stream.deltas.length),
        headHash: Buffer.from(stream.hashes.at(-1)!),
        replayed: false,
      };
      sequences.set(key, request.clientSequence);
      outcomes.set(`${key}|${request.clientSequence}`, { fingerprint, response });
      events.push({ cursor: "", event: { $case: "deltasAppended", value: { deltas: stream.deltas.slice(Number(head)) } } });
      notify();
      if (server.loseAnswers > 0) {
        server.loseAnswers -= 1;
        throw new ServerError(Status.UNAVAILABLE, "answer lost on purpose");
      }
      return response;
    },
    async listDeltas(request, context) {
      deviceOf(context);
      const stream = find(request.stream);
      const head = BigInt(stream.deltas.length);
      if (request.afterVersion > head && !server.lenientListing) {
        fail(Status.OUT_OF_RANGE, "VERSION_AHEAD_OF_HEAD", { headVersion: String(head) });
      }
      const deltas = stream.deltas.filter((delta) => delta.version > request.afterVersion).slice(0, request.pageSize || 100);
      const answer = { deltas, nextPageToken: "", headVersion: BigInt(stream.deltas.length) };
      await holdAnswer("listDeltas");
      return answer;
    },
    async *getSnapshot(request) {
      const stream = find(request.stream);
      // Opaque snapshots exist only once a client uploads one, which the fake does not take.
      if (stream.encoding === DeltaEncoding.DELTA_ENCODING_OPAQUE) fail(Status.NOT_FOUND, "SNAPSHOT_NOT_FOUND");
      const version = request.version ?? BigInt(stream.deltas.length);
      const state = canonicalJson(stream.states[Number(version)]!);
      const headHash = stream.hashes[Number(version)]!;
      await holdAnswer("getSnapshot");
      yield {
        part: {
          $case: "header" as const,
          value: {
            stream: stream.name,
            streamUid: stream.uid,
            version,
            headHash: Buffer.from(headHash),
            encoding: stream.encoding,
            sizeBytes: BigInt(state.length),
            snapshotHash: Buffer.from(snapshotHash({ streamUid: stream.uid, version, headHash, encoding: stream.encoding, state })),
          },
        },
      };
      yield { part: { $case: "data" as const, value: Buffer.from(state) } };
    },
  };

  const movedError = (where: { target: string; subject: string }): never =>
    fail(Status.FAILED_PRECONDITION, "SUBJECT_MOVED", { target: where.target, subject: where.subject });

  async function* subscribe(request: SubscribeRequest, context: CallContext): AsyncGenerator<SubscribeResponse> {
    deviceOf(context);
    subscribeCursors.push(request.cursor);
    if (request.parent !== SUBJECT) fail(Status.NOT_FOUND, "SUBJECT_NOT_FOUND");
    const cursorAt = (count: number): string => `${epoch}:${count}`;
    const [cursorEpoch, countText] = request.cursor.split(":");
    let next: number;
    if (request.cursor === "") {
      next = events.length;
      yield { cursor: cursorAt(next), event: { $case: "ready", value: { epoch } } };
    } else if (cursorEpoch === epoch && countText !== undefined && Number(countText) <= events.length) {
      next = Number(countText);
      for (; next < events.length; next += 1) yield { ...events[next]!, cursor: cursorAt(next + 1) };
      yield { cursor: cursorAt(next), event: { $case: "ready", value: { epoch } } };
    } else {
      // A cursor of another server (or store): the client must re-base.
      next = events.length;
      yield { cursor: cursorAt(next), event: { $case: "reset", value: { reason: ResetReason.RESET_REASON_EPOCH_CHANGED, epoch } } };
    }
    for (;;) {
      if (moved !== undefined) movedError(moved);
      if (next < events.length) {
        yield { ...events[next]!, cursor: cursorAt(next + 1) };
        next += 1;
        continue;
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          listeners.delete(wake);
          context.signal.removeEventListener("abort", wake);
          resolve();
        };
        listeners.add(wake);
        context.signal.addEventListener("abort", wake);
      });
      if (context.signal.aborted) return;
    }
  }

  const grpcServer: Server = createServer()
    .use(errorDetailsServerMiddleware)
    .use(async function* outage(call, context) {
      if (server.down) throw new ServerError(Status.UNAVAILABLE, "down on purpose");
      if (moved !== undefined) movedError(moved);
      return yield* call.next(call.request, context);
    });
  grpcServer.add(SubscriptionServiceDefinition, { subscribe });
  grpcServer.add(TokenServiceDefinition, {
    async exchangeToken(request) {
      exchanges += 1;
      return {
        accessToken: `token-${serverId}.${request.deviceId}`,
        expiresIn: 900,
        subject: SUBJECT,
        platform: "platforms/demo-a",
        device: `${SUBJECT}/devices/${request.deviceId}`,
        scope: "state.read state.write",
      };
    },
  });
  const unimplemented = () => {
    throw new ServerError(Status.UNIMPLEMENTED, "not in the fake");
  };
  grpcServer.add(StreamServiceDefinition, {
    ...Object.fromEntries(Object.keys(StreamServiceDefinition.methods).map((name) => [name, unimplemented])),
    ...implementation,
  } as StreamServiceImplementation);
  const port = await grpcServer.listen("127.0.0.1:0");

  const server: FakeStreamServer = {
    address: `127.0.0.1:${port}`,
    subject: SUBJECT,
    get exchanges() {
      return exchanges;
    },
    subscribeCursors,
    moveTo(target, moveOptions = {}) {
      target.importFrom({ subject: SUBJECT, streams: [...streams.values()] }, { sequences: moveOptions.sequences ?? true });
      moved = { target: target.address, subject: target.subject };
      notify();
    },
    importFrom(source, importOptions) {
      const rename = (name: string): string => (name.startsWith(`${source.subject}/`) ? `${SUBJECT}${name.slice(source.subject.length)}` : name);
      for (const original of source.streams) {
        const name = rename(original.name);
        const deltas = original.deltas.map((delta) => ({ ...delta, stream: name, device: rename(delta.device) }));
        streams.set(name, { ...original, name, deltas, states: [...original.states], hashes: [...original.hashes] });
        if (!importOptions.sequences) continue;
        // Each device's sequence continues from its imported deltas; a resend of one of
        // them is answered with the outcome rebuilt from the batch it belongs to.
        for (const delta of deltas) {
          if (delta.version !== delta.batchFirstVersion) continue;
          const batch = deltas.slice(Number(delta.version) - 1, Number(delta.version) - 1 + delta.batchSize);
          const last = batch.at(-1)!;
          const key = `${delta.device}|${name}`;
          if ((sequences.get(key) ?? 0n) < delta.clientSequence) sequences.set(key, delta.clientSequence);
          outcomes.set(`${key}|${delta.clientSequence}`, {
            payloads: payloadsOf(batch),
            response: {
              receipts: batch.map((d) => ({ version: d.version, hash: d.hash })),
              headVersion: last.version,
              headHash: last.hash,
              replayed: false,
            },
          });
        }
      }
    },
    deltas: new Map(),
    headState: (name) => find(name).states.at(-1)!,
    down: false,
    loseAnswers: 0,
    lenientListing: false,
    forceConflicts: 0,
    reuseWithoutExpectedSequence: false,
    holdNextAnswer(method) {
      let reached!: () => void;
      let release!: () => void;
      const answer = { reached: new Promise<void>((resolve) => (reached = resolve)), release: () => release() };
      heldAnswers.set(method, { reached, released: new Promise<void>((resolve) => (release = resolve)) });
      return answer;
    },
    appendCalls: 0,
    sequences,
    shutdown: () => grpcServer.shutdown(),
  };
  Object.defineProperty(server, "deltas", {
    get: () => new Map([...streams].map(([name, stream]) => [name, stream.deltas])),
  });
  return server;
}
