import type { continuity } from "@continuity/sdk/gen";
import { v1 } from "./clients.js";
import type { CaseContext, Session } from "./context.js";
import { check, checkBytes, checkEqual, fail } from "./expect.js";
import { canonicalJson, deltaHash, genesisHash, snapshotHash } from "./hashing.js";

type Stream = continuity.v1.Stream;
type Delta = continuity.v1.Delta;
type SnapshotHeader = continuity.v1.SnapshotHeader;

/** Encodings by short name, as cases use them. */
export const ENCODING = {
  jsonPatch: v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH,
  mergePatch: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH,
  opaque: v1.DeltaEncoding.DELTA_ENCODING_OPAQUE,
} as const;

/** Conflict policies by short name. */
export const POLICY = {
  strict: v1.ConflictPolicy.CONFLICT_POLICY_REQUIRE_EXPECTED_VERSION,
  blind: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND,
} as const;

/** UTF-8 JSON text of a value, as a client would send it (not canonical on purpose). */
export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), "utf8");
}

/** Creates a stream with a unique id and checks what CreateStream must return. */
export async function createStream(
  ctx: CaseContext,
  session: Session,
  options: { encoding?: number; policy?: number; type?: string; streamId?: string } = {},
): Promise<Stream> {
  const streamId = options.streamId ?? ctx.uniqueId("s");
  const type = options.type ?? "org.example.conformance";
  const encoding = options.encoding ?? ENCODING.mergePatch;
  const response = await session.clients.streams.createStream({
    parent: session.subject,
    streamId,
    stream: { ...emptyStream(), type, encoding, conflictPolicy: options.policy ?? POLICY.blind },
  });
  const stream = response.stream;
  check(stream !== undefined, "CreateStream must return the stream");
  checkEqual(stream.name, `${session.subject}/streams/${streamId}`, "created stream name");
  checkEqual(stream.headVersion, 0n, "head_version of a new stream");
  checkBytes(stream.headHash, genesisHash({ uid: stream.uid, type, encoding }), "head_hash of a new stream (genesis hash)");
  return stream;
}

/** A Stream message with every field at its zero value, for requests. */
export function emptyStream(): Stream {
  return v1.Stream.fromPartial({});
}

/** Appends JSON documents (or raw bytes) as one batch. */
export async function append(
  session: Session,
  stream: string,
  payloads: readonly (Uint8Array | object)[],
  options: { clientSequence: number | bigint; expectedVersion?: number | bigint },
): Promise<continuity.v1.AppendDeltasResponse> {
  return session.clients.streams.appendDeltas(appendRequest(stream, payloads, options));
}

/** The request `append` sends, for cases that replay it byte for byte. */
export function appendRequest(
  stream: string,
  payloads: readonly (Uint8Array | object)[],
  options: { clientSequence: number | bigint; expectedVersion?: number | bigint },
): continuity.v1.AppendDeltasRequest {
  return {
    stream,
    deltas: payloads.map((payload) => ({ payload: payload instanceof Uint8Array ? Buffer.from(payload) : jsonBytes(payload) })),
    clientSequence: BigInt(options.clientSequence),
    ...(options.expectedVersion === undefined ? {} : { expectedVersion: BigInt(options.expectedVersion) }),
  };
}

/** Pages through ListDeltas after `afterVersion` until the token is empty. */
export async function listAllDeltas(session: Session, stream: string, afterVersion = 0n, pageSize = 0): Promise<Delta[]> {
  const deltas: Delta[] = [];
  let pageToken = "";
  for (let page = 0; page < 10_000; page++) {
    const response = await session.clients.streams.listDeltas({ stream, afterVersion, pageSize, pageToken });
    deltas.push(...response.deltas);
    if (response.nextPageToken === "") return deltas;
    pageToken = response.nextPageToken;
  }
  return fail("ListDeltas never returned an empty next_page_token");
}

/**
 * Recomputes every hash of a run of deltas: each `hash` from its fields, each `prev_hash`
 * from the delta before it (or `startHash`), versions consecutive from `startVersion + 1`.
 */
export function verifyChain(stream: Pick<Stream, "uid" | "encoding">, deltas: readonly Delta[], startVersion: bigint, startHash: Uint8Array): Uint8Array {
  let prev = startHash;
  let expectedVersion = startVersion + 1n;
  for (const delta of deltas) {
    checkEqual(delta.version, expectedVersion, "delta versions must be consecutive");
    checkEqual(delta.streamUid, stream.uid, `stream_uid of delta ${delta.version}`);
    checkEqual(delta.encoding, stream.encoding, `encoding of delta ${delta.version}`);
    checkBytes(delta.prevHash, prev, `prev_hash of delta ${delta.version}`);
    const recomputed = deltaHash({ prevHash: prev, version: delta.version, encoding: delta.encoding, payload: delta.payload });
    checkBytes(delta.hash, recomputed, `hash of delta ${delta.version} (recomputed from prev_hash, version, encoding, payload)`);
    prev = recomputed;
    expectedVersion += 1n;
  }
  return prev;
}

/** Lists and verifies the whole retained chain of a stream; returns the verified deltas. */
export async function verifyStreamChain(session: Session, streamName: string): Promise<{ stream: Stream; deltas: Delta[] }> {
  const { stream } = await session.clients.streams.getStream({ name: streamName });
  check(stream !== undefined, "GetStream must return the stream");
  const startHash = stream.horizonVersion === 0n ? genesisHash(stream) : stream.horizonHash;
  const deltas = await listAllDeltas(session, streamName, stream.horizonVersion);
  const head = verifyChain(stream, deltas, stream.horizonVersion, startHash);
  checkEqual(stream.horizonVersion + BigInt(deltas.length), stream.headVersion, "retained deltas must reach the head");
  checkBytes(stream.headHash, head, "Stream.head_hash (recomputed along the chain)");
  return { stream, deltas };
}

/** A downloaded snapshot, its header checked against its bytes. */
export interface DownloadedSnapshot {
  readonly header: SnapshotHeader;
  readonly state: Buffer;
  readonly chunks: number;
}

/** Downloads a snapshot and recomputes its size and snapshot hash. */
export async function downloadSnapshot(session: Session, stream: string, version?: bigint, maxChunkBytes?: number): Promise<DownloadedSnapshot> {
  let header: SnapshotHeader | undefined;
  const chunks: Uint8Array[] = [];
  for await (const message of session.clients.streams.getSnapshot({ stream, ...(version === undefined ? {} : { version }) })) {
    if (message.part?.$case === "header") {
      check(header === undefined && chunks.length === 0, "GetSnapshot must send exactly one header, first");
      header = message.part.value;
    } else if (message.part?.$case === "data") {
      check(header !== undefined, "GetSnapshot must send the header before data");
      check(message.part.value.length > 0, "GetSnapshot must not send an empty data chunk (SNAP-002)");
      if (maxChunkBytes !== undefined) check(message.part.value.length <= maxChunkBytes, `snapshot chunk of ${message.part.value.length} bytes exceeds max_chunk_bytes ${maxChunkBytes}`);
      chunks.push(message.part.value);
    } else {
      fail("GetSnapshot sent a message with neither header nor data");
    }
  }
  check(header !== undefined, "GetSnapshot must send a header");
  const state = Buffer.concat(chunks);
  checkEqual(header.sizeBytes, BigInt(state.length), "SnapshotHeader.size_bytes vs the bytes sent");
  const recomputed = snapshotHash({ streamUid: header.streamUid, version: header.version, headHash: header.headHash, encoding: header.encoding, state });
  checkBytes(header.snapshotHash, recomputed, `snapshot_hash at version ${header.version} (recomputed)`);
  return { header, state, chunks: chunks.length };
}

/** Checks that a JSON snapshot holds exactly the canonical JSON of `expected`. */
export function checkJsonState(snapshot: DownloadedSnapshot, expected: unknown, what: string): void {
  const canonical = Buffer.from(canonicalJson(expected));
  if (!snapshot.state.equals(canonical)) {
    fail(`${what}: expected state ${canonical.toString("utf8")}, got ${snapshot.state.toString("utf8").slice(0, 600)}`);
  }
}
