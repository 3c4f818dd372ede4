import { createHash, randomUUID } from "node:crypto";
import {
  canonicalJson,
  checkJsonDeltaStructure,
  INITIAL_JSON_STATE,
  isMalformedPatchError,
  isPatchNotApplicableError,
  parseJsonDocument,
  snapshotPreimageHeader,
  toHex,
  type JsonValue,
} from "@continuity/sdk/protocol";
import type { continuity } from "@continuity/sdk/gen";
import { Status } from "nice-grpc-common";
import { z } from "zod";
import type { AuthCallContextExt } from "../auth/context.js";
import { requireOwnSubject, requireScope } from "../auth/scopes.js";
import { invalidField, protocolError } from "../errors.js";
import type {
  AppendHead,
  AppendInput,
  AppendResult,
  BuiltBatch,
  BuiltDelta,
  EncodingCode,
  StateLag,
  StreamRecord,
} from "../store/types.js";
import { Encoding } from "../store/types.js";
import {
  appendDeltasSchema,
  compactStreamSchema,
  createStreamSchema,
  getSnapshotSchema,
  listDeltasSchema,
  listStreamsSchema,
  streamNameSchema,
  uploadHeaderSchema,
} from "../validation/core-requests.js";
import { streamName } from "../validation/names.js";
import { parseRequest } from "../validation/validate.js";
import { loadAccess } from "./access.js";
import { deltaHash, genesisHash, snapshotHash, snapshotHashSliced } from "./hashing.js";
import { appendOnHeldHead, StaleHead, type JsonHeads } from "./json-heads.js";
import { jsonBounds, refusedBound } from "./materialize.js";
import {
  aheadOfHead,
  encodingName,
  grantReadOnly,
  historyCompacted,
  requireDevice,
  streamNotFound,
  versionCheckError,
  visibleStream,
} from "./common.js";
import type { ServerLimits, ServiceDeps } from "./deps.js";
import { invalidPageToken, pageSize } from "./paging.js";
import { subjectNotFound } from "../auth/wire-errors.js";
import { wireDelta, wireSnapshotHeader, wireStream } from "./wire.js";

type Impl = continuity.v1.StreamServiceImplementation<AuthCallContextExt>;

const DEFAULT_STREAM_PAGE = 50;
const DEFAULT_DELTA_PAGE = 100;
/** Snapshot hashes remembered per stream version (32 bytes each, plus the key). */
const SNAPSHOT_HASH_CACHE_ENTRIES = 4096;

/**
 * StreamService: streams, appends, history, snapshots and compaction.
 *
 * Every method follows the check order of the design note — scope, request syntax, limits,
 * visibility, write access, device, then the store's own decisions — so that a caller
 * learns nothing from a refusal that an earlier check should have given.
 */
export function createStreamService(deps: ServiceDeps): Impl {
  const { store, limits, jsonHeads } = deps;
  // The snapshot hash of a JSON state at a version never changes (history is immutable and
  // the uid names one stream forever), so hashing a state of megabytes again for every
  // device that resumes it is work done for nothing. Least recently used first.
  const snapshotHashes = new Map<string, Uint8Array>();
  const snapshotHashOf = async (stream: StreamRecord, version: number, headHash: Uint8Array, state: Uint8Array): Promise<Uint8Array> => {
    const key = `${stream.uid}\0${version}\0${toHex(headHash)}`;
    const known = snapshotHashes.get(key);
    if (known !== undefined) {
      snapshotHashes.delete(key);
      snapshotHashes.set(key, known);
      return known;
    }
    const hash = await snapshotHashSliced({ streamUid: stream.uid, version, headHash, encoding: stream.encoding, state });
    snapshotHashes.set(key, hash);
    // Stryker disable next-line all: memory only: a snapshot hash evicted sooner, later or never is computed again as the same hash
    if (snapshotHashes.size > SNAPSHOT_HASH_CACHE_ENTRIES) snapshotHashes.delete(snapshotHashes.keys().next().value!);
    return hash;
  };

  return {
    async createStream(request, { auth }) {
      requireScope(auth, "state.write");
      const req = parseRequest(createStreamSchema, request);
      requireOwnSubject(auth, req.parent, "write");
      const encoding = req.stream.encoding as EncodingCode;
      const uid = randomUUID();
      const result = await store.createStream({
        subjectId: req.parent,
        id: req.streamId === "" ? deps.newId() : req.streamId,
        uid,
        type: req.stream.type,
        encoding,
        conflictPolicy: req.stream.conflictPolicy as 1 | 2,
        ownerPlatformId: auth.platformId,
        genesisHash: genesisHash({ uid, type: req.stream.type, encoding }),
        initialState: encoding === Encoding.Opaque ? undefined : canonicalJson(INITIAL_JSON_STATE),
        maxStreamsPerSubject: limits.maxStreamsPerSubject,
        now: deps.clock(),
      });
      switch (result.kind) {
        case "created":
          return { stream: wireStream(result.stream) };
        case "already-exists":
          throw protocolError(Status.ALREADY_EXISTS, "STREAM_ALREADY_EXISTS", "a stream with this id exists");
        case "limit-reached":
          throw protocolError(Status.RESOURCE_EXHAUSTED, "STREAM_LIMIT_REACHED", "the subject has too many streams", {
            limit: String(limits.maxStreamsPerSubject),
          });
        case "subject-not-found":
          throw subjectNotFound();
      }
    },

    async getStream(request, { auth }) {
      requireScope(auth, "state.read");
      const { name } = parseRequest(streamNameSchema, request);
      // Stryker disable next-line StringLiteral: the intent is only compared with "write" (visibleStream, requireOwnSubject), so "" reads like "read"
      const { stream } = await visibleStream(store, auth, name, "read");
      return { stream: wireStream(stream) };
    },

    async listStreams(request, { auth }) {
      requireScope(auth, "state.read");
      const req = parseRequest(listStreamsSchema, request);
      // Stryker disable next-line StringLiteral: requireOwnSubject does not look at the intent, so "" changes nothing
      requireOwnSubject(auth, req.parent, "read");
      const type = req.type === "" ? undefined : req.type;
      // Stryker disable next-line StringLiteral: the method name only keeps the keys of List methods apart, and every other key starts with its own non-empty method name
      const key = ["ListStreams", req.parent, auth.platformId, req.type];
      const after = deps.pageTokens.decode(key, req.pageToken);
      const { visibility } = await loadAccess(store, auth);
      const page = await store.listStreams(
        req.parent,
        { visibility, type },
        { after, limit: pageSize(req.pageSize, DEFAULT_STREAM_PAGE, limits.maxPageSize) },
      );
      return {
        streams: page.items.map(wireStream),
        nextPageToken: page.nextAfter === undefined ? "" : deps.pageTokens.encode(key, page.nextAfter),
      };
    },

    async deleteStream(request, { auth }) {
      requireScope(auth, "state.write");
      const { name } = parseRequest(streamNameSchema, request);
      // Stryker disable next-line StringLiteral: the intent is only compared with "write" (visibleStream, requireOwnSubject), so "" reads like "read"
      const { stream } = await visibleStream(store, auth, name, "read");
      if (stream.ownerPlatformId !== auth.platformId) {
        throw protocolError(Status.PERMISSION_DENIED, "NOT_STREAM_OWNER", "only the stream's owner platform may delete it");
      }
      const deleted = await store.deleteStream(name.subjectId, name.id, deps.clock());
      if (deleted === undefined) throw streamNotFound();
      return {};
    },

    async appendDeltas(request, { auth }) {
      const started = performance.now();
      requireScope(auth, "state.write");
      const req = parseRequest(appendDeltasSchema, request);
      checkBatchLimits(req.deltas.map((d) => d.payload));
      const { stream, access } = await visibleStream(store, auth, req.stream, "write", { deferWriteCheck: true });
      // Payload syntax needs the stream's encoding, so it is judged once the stream is known
      // to be visible: earlier would reveal the encoding of streams the caller cannot see.
      const parsed =
        stream.encoding === Encoding.Opaque ? undefined : req.deltas.map((d, i) => parsePayload(d.payload, i, stream.encoding));
      if (!access.canWrite(stream)) throw grantReadOnly();
      const deviceId = requireDevice(auth);

      const raw = req.deltas.map((d) => d.payload);
      const result = await appendOnHeldHead(store, jsonHeads, stream, {
        subjectId: stream.subjectId,
        streamId: stream.id,
        streamUid: stream.uid,
        deviceId,
        clientSequence: req.clientSequence,
        fingerprint: appendFingerprint(streamName(stream.subjectId, stream.id), req.expectedVersion, req.deltas),
        expectedVersion: req.expectedVersion,
        now: deps.clock(),
        build: (head) => buildBatch(head, raw, parsed, limits, jsonHeads),
      });
      switch (result.kind) {
        case "committed":
        case "replayed": {
          const replayed = result.kind === "replayed";
          if (replayed) deps.metrics.recordAppendReplay();
          else deps.metrics.recordAppend(result.outcome.receipts.length, (performance.now() - started) / 1000);
          return {
            receipts: result.outcome.receipts.map((r) => ({ version: BigInt(r.version), hash: Buffer.from(r.hash) })),
            headVersion: BigInt(result.outcome.headVersion),
            headHash: Buffer.from(result.outcome.headHash),
            replayed,
          };
        }
        case "stream-not-found":
          throw streamNotFound();
        case "sequence-reused":
          throw protocolError(
            Status.FAILED_PRECONDITION,
            "CLIENT_SEQUENCE_REUSED",
            "this client sequence was acknowledged for a different request",
            { clientSequence: String(result.clientSequence), expectedSequence: String(result.expectedSequence) },
          );
        case "sequence-expired":
          throw protocolError(
            Status.FAILED_PRECONDITION,
            "CLIENT_SEQUENCE_EXPIRED",
            "this client sequence was acknowledged, but its outcome is no longer kept; re-read the stream",
            { expectedSequence: String(result.expectedSequence), clientSequence: String(result.clientSequence) },
          );
        case "sequence-gap":
          throw protocolError(
            Status.FAILED_PRECONDITION,
            "CLIENT_SEQUENCE_GAP",
            `client sequence skips numbers; expected ${result.expectedSequence}`,
            { expectedSequence: String(result.expectedSequence) },
          );
        case "expected-version-required":
          throw protocolError(
            Status.FAILED_PRECONDITION,
            "EXPECTED_VERSION_REQUIRED",
            "this stream's conflict policy requires expected_version",
          );
        case "version-conflict":
          throw protocolError(Status.ABORTED, "VERSION_CONFLICT", `expected_version is not the head (${result.headVersion})`, {
            headVersion: String(result.headVersion),
            headHash: toHex(result.headHash),
          });
        case "rejected":
          throw result.error;
      }
    },

    async listDeltas(request, { auth }) {
      requireScope(auth, "state.read");
      // Stryker disable StringLiteral: the intent is only compared with "write" (visibleStream, requireOwnSubject), so "" reads like "read"
      const req = parseRequest(listDeltasSchema, request);
      const { stream } = await visibleStream(store, auth, req.stream, "read");
      // Stryker restore StringLiteral
      if (req.afterVersion > stream.headVersion) throw aheadOfHead(stream.headVersion);
      if (req.afterVersion < stream.horizonVersion) {
        throw historyCompacted(stream.horizonVersion);
      }
      // Stryker disable next-line StringLiteral: the method name only keeps the keys of List methods apart, and every other key starts with its own non-empty method name
      const key = ["ListDeltas", streamName(stream.subjectId, stream.id), stream.uid, auth.platformId, String(req.afterVersion)];
      const token = deps.pageTokens.decode(key, req.pageToken);
      let after = token === undefined ? req.afterVersion : Number(token);
      // Stryker disable next-line all: unreachable: a token verifies only for the after_version it was minted with, and its continuation is a version above it
      if (!Number.isSafeInteger(after) || after < req.afterVersion) {
        throw invalidPageToken();
      }
      // Stryker disable next-line all: unreachable: a continuation is at or above after_version, which was checked against the horizon above
      if (token !== undefined && after < stream.horizonVersion) throw historyCompacted(stream.horizonVersion);
      const limit = pageSize(req.pageSize, DEFAULT_DELTA_PAGE, limits.maxPageSize);
      const deltas = (await store.listDeltas(stream.subjectId, stream.id, after, limit)).filter(
        (d) => d.version <= stream.headVersion,
      );
      const last = deltas[deltas.length - 1];
      const more = last !== undefined && last.version < stream.headVersion;
      return {
        deltas: deltas.map(wireDelta),
        nextPageToken: more ? deps.pageTokens.encode(key, String(last.version)) : "",
        headVersion: BigInt(stream.headVersion),
      };
    },

    async *getSnapshot(request, { auth, signal }) {
      requireScope(auth, "state.read");
      // Stryker disable StringLiteral: the intent is only compared with "write" (visibleStream, requireOwnSubject), so "" reads like "read"
      const req = parseRequest(getSnapshotSchema, request);
      const { stream } = await visibleStream(store, auth, req.stream, "read");
      // Stryker restore StringLiteral
      const version = req.version ?? stream.headVersion;
      if (version > stream.headVersion) throw aheadOfHead(stream.headVersion);

      if (stream.encoding === Encoding.Opaque) {
        yield* opaqueSnapshot(stream, version, signal);
        return;
      }
      // Stryker disable next-line ConditionalExpression: a pre-check only: materializing a version below the horizon answers the same HISTORY_COMPACTED
      if (version < stream.horizonVersion) throw historyCompacted(stream.horizonVersion);
      const { state, headHash } = await materialize(stream, version);
      const hash = await snapshotHashOf(stream, version, headHash, state);
      yield {
        part: {
          $case: "header",
          value: wireSnapshotHeader(stream, { version, headHash, sizeBytes: state.length, snapshotHash: hash }),
        },
      };
      for (let offset = 0; offset < state.length; offset += limits.maxChunkBytes) {
        signal.throwIfAborted();
        yield { part: { $case: "data", value: Buffer.from(state.subarray(offset, offset + limits.maxChunkBytes)) } };
      }
    },

    async uploadSnapshot(requests, { auth }) {
      requireScope(auth, "state.write");
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done === true || first.value.part?.$case !== "header") {
        throw invalidField("header", "the first message must be the snapshot header");
      }
      // Field paths as the request spells them (ERR-004): `header.stream`, `header.size_bytes`.
      const header = parseRequest(z.object({ header: uploadHeaderSchema }), { header: first.value.part.value }).header;
      const { stream } = await visibleStream(store, auth, header.stream, "write");
      if (stream.encoding !== Encoding.Opaque) {
        throw protocolError(
          Status.FAILED_PRECONDITION,
          "ENCODING_UNSUPPORTED",
          "snapshots are uploaded for opaque streams only; the server materializes JSON streams",
          { encoding: encodingName(stream.encoding) },
        );
      }
      if (header.sizeBytes > limits.maxSnapshotBytes) {
        throw protocolError(Status.RESOURCE_EXHAUSTED, "SNAPSHOT_TOO_LARGE", "snapshot exceeds max_snapshot_bytes", {
          limit: String(limits.maxSnapshotBytes),
        });
      }
      const headHash = await store.hashAtVersion(stream.subjectId, stream.id, header.version);
      if (!(headHash instanceof Uint8Array)) throw versionCheckError(headHash);

      const mismatch = (why: string) =>
        protocolError(Status.INVALID_ARGUMENT, "SNAPSHOT_MISMATCH", `snapshot bytes do not match the header: ${why}`);
      const hasher = createHash("sha256").update(
        snapshotPreimageHeader({ streamUid: stream.uid, version: header.version, headHash, encoding: stream.encoding, sizeBytes: header.sizeBytes }),
      );
      const chunks: Uint8Array[] = [];
      let received = 0;
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) break;
        const part = next.value.part;
        if (part?.$case !== "data") throw invalidField("header", "only the first message may be a header");
        if (part.value.length > limits.maxChunkBytes) {
          throw invalidField("data", `chunks must be at most ${limits.maxChunkBytes} bytes`);
        }
        received += part.value.length;
        // Refuse as soon as the declared size is exceeded: never hold more than announced.
        // Stryker disable next-line StringLiteral: the status message still says the bytes do not match the header; clients never branch on it (ERR-007)
        if (received > header.sizeBytes) throw mismatch("more bytes than size_bytes");
        hasher.update(part.value);
        chunks.push(part.value);
      }
      // Stryker disable next-line StringLiteral: the status message still says the bytes do not match the header; clients never branch on it (ERR-007)
      if (received !== header.sizeBytes) throw mismatch("fewer bytes than size_bytes");
      const computed = new Uint8Array(hasher.digest());
      // Stryker disable next-line StringLiteral: the status message still says the bytes do not match the header; clients never branch on it (ERR-007)
      if (!Buffer.from(computed).equals(Buffer.from(header.snapshotHash))) throw mismatch("snapshot_hash differs");

      const result = await store.putSnapshot({
        subjectId: stream.subjectId,
        streamId: stream.id,
        version: header.version,
        sizeBytes: header.sizeBytes,
        snapshotHash: computed,
        // The chain hash cannot change for a retained version, but the stream could have been
        // deleted and recreated under the same id while the bytes were arriving.
        verify: (current, hashAtVersion) =>
          current.uid === stream.uid && Buffer.from(hashAtVersion).equals(Buffer.from(headHash)),
        chunks,
        now: deps.clock(),
      });
      switch (result.kind) {
        case "stored":
          return {
            header: wireSnapshotHeader(stream, result.snapshot),
          };
        case "mismatch":
        case "stream-not-found":
          throw streamNotFound();
        case "not-opaque":
          throw protocolError(Status.FAILED_PRECONDITION, "ENCODING_UNSUPPORTED", "not an opaque stream", {
            encoding: encodingName(result.encoding),
          });
        default:
          throw versionCheckError(result);
      }
    },

    async compactStream(request, { auth }) {
      requireScope(auth, "state.write");
      const req = parseRequest(compactStreamSchema, request);
      const { stream } = await visibleStream(store, auth, req.stream, "write");
      // Stryker disable next-line ConditionalExpression: a pre-check only: the store answers a horizon beyond the head with the same VERSION_AHEAD_OF_HEAD
      if (req.horizonVersion > stream.headVersion) throw aheadOfHead(stream.headVersion);
      // Stryker disable next-line EqualityOperator: at the current horizon the store answers unchanged, with the same stream
      if (req.horizonVersion <= stream.horizonVersion) return { stream: wireStream(stream) };
      const stateAtHorizon =
        stream.encoding === Encoding.Opaque ? undefined : (await materialize(stream, req.horizonVersion)).state;
      const result = await store.compactStream({
        subjectId: stream.subjectId,
        streamId: stream.id,
        horizonVersion: req.horizonVersion,
        stateAtHorizon,
        now: deps.clock(),
      });
      switch (result.kind) {
        case "compacted":
        // Stryker disable next-line StringLiteral: unreachable: the store answers unchanged only for a horizon at or below the current one, which returned above
        case "unchanged":
          return { stream: wireStream(result.stream) };
        case "snapshot-required":
          throw protocolError(
            Status.NOT_FOUND,
            "SNAPSHOT_NOT_FOUND",
            "an opaque stream compacts only to a version with an uploaded snapshot",
          );
        case "stream-not-found":
          throw streamNotFound();
        case "ahead-of-head":
          throw aheadOfHead(result.headVersion);
      }
    },
  };

  function checkBatchLimits(payloads: readonly Uint8Array[]): void {
    if (payloads.length > limits.maxBatchDeltas) {
      throw protocolError(Status.RESOURCE_EXHAUSTED, "BATCH_TOO_LARGE", "too many deltas in one batch", {
        limit: String(limits.maxBatchDeltas),
      });
    }
    let total = 0;
    payloads.forEach((payload, index) => {
      if (payload.length > limits.maxDeltaBytes) {
        throw protocolError(Status.RESOURCE_EXHAUSTED, "DELTA_TOO_LARGE", `delta ${index} exceeds max_delta_bytes`, {
          limit: String(limits.maxDeltaBytes),
          index: String(index),
        });
      }
      total += payload.length;
    });
    if (total > limits.maxBatchBytes) {
      throw protocolError(Status.RESOURCE_EXHAUSTED, "BATCH_TOO_LARGE", "the batch exceeds max_batch_bytes", {
        limit: String(limits.maxBatchBytes),
      });
    }
  }

  /** The JSON state (canonical bytes) and chain hash of a JSON stream at a retained version. */
  async function materialize(stream: StreamRecord, version: number): Promise<{ state: Uint8Array; headHash: Uint8Array }> {
    const result = await jsonHeads.canonicalBytes(stream, version);
    if (!("bytes" in result)) throw versionCheckError(result);
    return { state: result.bytes, headHash: result.headHash };
  }

  async function* opaqueSnapshot(
    stream: StreamRecord,
    version: number,
    signal: AbortSignal,
  ): AsyncGenerator<continuity.v1.GetSnapshotResponse> {
    const snapshot = await store.findSnapshot(stream.subjectId, stream.id, version);
    const name = streamName(stream.subjectId, stream.id);
    if (snapshot === undefined) {
      if (stream.horizonVersion > 0) {
        throw protocolError(Status.NOT_FOUND, "SNAPSHOT_NOT_FOUND", "no snapshot was uploaded at or below this version");
      }
      // Version 0 of an opaque stream is the empty state, which needs no upload.
      const empty = new Uint8Array(0);
      yield {
        part: {
          $case: "header",
          value: wireSnapshotHeader(stream, {
            version: 0,
            headHash: stream.genesisHash,
            sizeBytes: 0,
            snapshotHash: snapshotHash({ streamUid: stream.uid, version: 0, headHash: stream.genesisHash, encoding: stream.encoding, state: empty }),
          }),
        },
      };
      return;
    }
    yield {
      part: {
        $case: "header",
        value: wireSnapshotHeader(stream, snapshot),
      },
    };
    for await (const chunk of store.readSnapshotChunks(stream.subjectId, stream.id, snapshot.version)) {
      signal.throwIfAborted();
      for (let offset = 0; offset < chunk.length; offset += limits.maxChunkBytes) {
        yield { part: { $case: "data", value: Buffer.from(chunk.subarray(offset, offset + limits.maxChunkBytes)) } };
      }
    }
  }
}

/**
 * Parses one JSON delta payload and checks its structure for the encoding, or refuses it as
 * MALFORMED_PAYLOAD. Structure is judged on its own, before any state is involved, so a
 * malformed patch is reported as such wherever it sits in the batch (APPEND-041).
 */
function parsePayload(payload: Uint8Array, index: number, encoding: EncodingCode): JsonValue | undefined {
  try {
    const document = parseJsonDocument(payload);
    checkJsonDeltaStructure(encoding, document);
    return document;
  } catch (error) {
    // Stryker disable next-line ConditionalExpression: parseJsonDocument and checkJsonDeltaStructure throw nothing but malformed-patch errors
    if (!isMalformedPatchError(error)) throw error;
    throw malformed(index, error.message);
  }
}

function malformed(index: number, why: string): Error {
  return protocolError(Status.INVALID_ARGUMENT, "MALFORMED_PAYLOAD", `delta ${index}: ${why}`, { index: String(index) });
}

/**
 * Computes a batch on the head it will follow. Runs inside the store transaction: JSON
 * patches are applied to the head state one after another, and a batch with an
 * inapplicable delta, or one whose state would exceed `maxStateBytes` (LIMIT-020), is refused
 * whole.
 */
function buildBatch(
  head: AppendHead,
  raw: readonly Uint8Array[],
  parsed: readonly (JsonValue | undefined)[] | undefined,
  limits: ServerLimits,
  heads: JsonHeads,
): BuiltBatch {
  const { stream } = head;
  const held = parsed === undefined ? undefined : heads.at(stream);
  if (parsed !== undefined) {
    if (held === undefined) throw new StaleHead();
    // One working copy of the state for the whole batch; `index` names the delta being
    // applied when one fails.
    let index = -1;
    const patches = function* () {
      for (const [i, patch] of parsed.entries()) {
        index = i;
        if (patch !== undefined) yield patch;
      }
    };
    try {
      held!.editor.apply(stream.encoding, patches(), jsonBounds(limits));
    } catch (error) {
      if (isPatchNotApplicableError(error)) {
        const bound = refusedBound(error.reason, limits);
        if (bound !== undefined) throw protocolError(Status.RESOURCE_EXHAUSTED, bound.reason, `delta ${index}: ${bound.message}`, { limit: String(bound.limit), index: String(index) });
        throw protocolError(Status.FAILED_PRECONDITION, "PATCH_NOT_APPLICABLE", `delta ${index}: ${error.message}`, {
          index: String(index),
        });
      }
      if (isMalformedPatchError(error)) throw malformed(index, error.message);
      throw error;
    }
  }
  let prevHash = stream.headHash;
  const deltas: BuiltDelta[] = [];
  for (const [index, bytes] of raw.entries()) {
    const patch = parsed?.[index];
    const payload = patch === undefined ? bytes : canonicalJson(patch);
    const version = stream.headVersion + index + 1;
    const hash = deltaHash({
      prevHash,
      version,
      encoding: stream.encoding,
      payload,
    });
    deltas.push({ payload, prevHash, hash });
    prevHash = hash;
  }
  if (held !== undefined) heads.advanced(held, stream.headVersion + deltas.length, prevHash);
  return { deltas };
}


/** SHA-256 over what makes two appends "the same request" (see the design note). */
function appendFingerprint(stream: string, expectedVersion: number | undefined, deltas: readonly { payload: Uint8Array }[]): Uint8Array {
  const hash = createHash("sha256");
  const u64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  hash.update("continuity.v1/append-fingerprint\0");
  hash.update(u64(Buffer.byteLength(stream)));
  hash.update(stream);
  // Stryker disable next-line ArrayDeclaration: with either tag byte dropped, a request without expected_version and one with it still hash different bytes; a collision would need payloads crafted for it
  hash.update(expectedVersion === undefined ? Buffer.from([0]) : Buffer.concat([Buffer.from([1]), u64(expectedVersion)]));
  hash.update(u64(deltas.length));
  for (const delta of deltas) {
    hash.update(u64(delta.payload.length));
    hash.update(delta.payload);
  }
  return hash.digest();
}
