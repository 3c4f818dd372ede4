/**
 * The four hashes of the protocol (spec: docs/spec/hashing.md). Each is SHA-256 over a
 * preimage that starts with its own domain tag and lists fixed-width or length-prefixed
 * fields, so every preimage parses in exactly one way and no hash of one kind can be replayed
 * as another. The `*Preimage` functions are exported for test vectors and debugging; the
 * hashes are what callers compare.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { DeltaEncoding, type ResumePayload } from "../gen/continuity/v1/types.js";
import { concatBytes, domainTag, lp, toUint64, u32be, u64be, u8, utf8 } from "./bytes.js";
import { canonicalJson, defineMember, type JsonObject } from "./json.js";

/** Length in bytes of every hash of the protocol. */
export const HASH_LENGTH = 32;

/** Most bytes the canonical resume payload may have (spec HASH-041, `Limits.max_resume_payload_bytes`). */
export const MAX_RESUME_PAYLOAD_BYTES = 4096;

/** Domain tags, without their terminating 0x00 byte. */
export const DOMAIN_TAGS = Object.freeze({
  genesis: "continuity.v1/genesis",
  delta: "continuity.v1/delta",
  snapshot: "continuity.v1/snapshot",
  checkpoint: "continuity.v1/checkpoint",
});

const GENESIS_TAG = domainTag(DOMAIN_TAGS.genesis);
const DELTA_TAG = domainTag(DOMAIN_TAGS.delta);
const SNAPSHOT_TAG = domainTag(DOMAIN_TAGS.snapshot);
const CHECKPOINT_TAG = domainTag(DOMAIN_TAGS.checkpoint);
const LOWERCASE_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What the genesis hash of a stream commits to. */
export interface GenesisInput {
  /** The stream's `uid`: a lowercase UUID in its 36-character text form. */
  uid: string;
  /** The stream's type name, e.g. `org.example.course-progress`. */
  type: string;
  /** The stream's encoding (1, 2 or 3). */
  encoding: DeltaEncoding;
}

/** What a delta hash commits to. */
export interface DeltaHashInput {
  /** Hash of the previous delta, or the genesis hash for version 1. */
  prevHash: Uint8Array;
  /** The delta's version, starting at 1. */
  version: bigint | number;
  /** The stream's encoding. */
  encoding: DeltaEncoding;
  /** The stored payload: canonical JSON bytes for JSON encodings, the raw bytes for opaque. */
  payload: Uint8Array;
}

/** What a snapshot hash commits to. */
export interface SnapshotHashInput {
  /** The stream's `uid`. */
  streamUid: string;
  /** The version the state is at (0 for the initial state). */
  version: bigint | number;
  /** The chain hash at `version` (the genesis hash at 0). */
  headHash: Uint8Array;
  /** The stream's encoding. */
  encoding: DeltaEncoding;
  /** Canonical JSON bytes of the state for JSON encodings, the snapshot bytes for opaque. */
  state: Uint8Array;
}

/** One stream's position inside a checkpoint. */
export interface CheckpointEntryInput {
  /** The stream's `uid`. */
  streamUid: string;
  /** The captured version. */
  version: bigint | number;
  /** The chain hash at `version`. */
  headHash: Uint8Array;
}

/** What a checkpoint digest commits to. Entries may come in any order; the digest sorts them. */
export interface CheckpointDigestInput {
  /** One entry per stream, each stream at most once. */
  entries: readonly CheckpointEntryInput[];
  /** The resume payload; unset fields (or an unset payload) count as empty. */
  resume: Partial<ResumePayload> | undefined;
}

/**
 * Head hash of a stream at version 0. It binds the chain to the stream's identity, type and
 * encoding, so two streams never share a chain even when their deltas are byte-identical.
 */
export function genesisHash(input: GenesisInput): Uint8Array {
  return sha256(genesisPreimage(input));
}

/** `"continuity.v1/genesis" 0x00 || lp(uid) || lp(type) || u8(encoding)`. */
export function genesisPreimage(input: GenesisInput): Uint8Array {
  return concatBytes([GENESIS_TAG, lp(checkUid(input.uid, "uid")), lp(input.type), encodingByte(input.encoding)]);
}

/**
 * Chain hash of one delta. It commits to the previous hash, so every delta vouches for the
 * whole history before it, and to the version and encoding, so reordering or re-typing a
 * payload changes the hash.
 */
export function deltaHash(input: DeltaHashInput): Uint8Array {
  return sha256(deltaPreimage(input));
}

/** `"continuity.v1/delta" 0x00 || prev_hash || u64be(version) || u8(encoding) || u32be(len) || payload`. */
export function deltaPreimage(input: DeltaHashInput): Uint8Array {
  return concatBytes([deltaPreimageHeader({ ...input, payloadLength: input.payload.length }), input.payload]);
}

/**
 * The part of a delta's preimage before its payload. A hasher that has the payload apart
 * (a verifier holding it in the message it arrived in) feeds this and then the payload,
 * instead of copying both into one preimage.
 */
export function deltaPreimageHeader(input: Omit<DeltaHashInput, "payload"> & { readonly payloadLength: number }): Uint8Array {
  return concatBytes([DELTA_TAG, checkHash(input.prevHash, "prevHash"), u64be(input.version), encodingByte(input.encoding), u32be(input.payloadLength)]);
}

/**
 * Hash of a stream's full state at a version. It commits to the chain hash at that version, so
 * a snapshot can only be matched with the history it claims to summarize.
 */
export function snapshotHash(input: SnapshotHashInput): Uint8Array {
  return sha256(snapshotPreimage(input));
}

/** `"continuity.v1/snapshot" 0x00 || lp(uid) || u64be(version) || head_hash || u8(encoding) || u64be(len) || state`. */
export function snapshotPreimage(input: SnapshotHashInput): Uint8Array {
  return concatBytes([snapshotPreimageHeader({ ...input, sizeBytes: input.state.length }), input.state]);
}

/** Incremental snapshot hashing, for states that arrive in chunks. */
export interface SnapshotHasher {
  /** Feeds the next chunk of state bytes. Throws once more than `sizeBytes` arrived. */
  update(chunk: Uint8Array): void;
  /** The snapshot hash. Throws unless exactly `sizeBytes` bytes were fed. */
  digest(): Uint8Array;
}

/**
 * Hashes a snapshot whose state arrives in chunks (GetSnapshot, UploadSnapshot) without ever
 * holding it whole. Works because the preimage puts the state length before the state, and
 * the header declares that length up front.
 */
export function createSnapshotHasher(input: Omit<SnapshotHashInput, "state"> & { sizeBytes: bigint | number }): SnapshotHasher {
  const sizeBytes = toUint64(input.sizeBytes);
  const hash = sha256.create();
  hash.update(snapshotPreimageHeader(input));
  let received = 0n;
  return {
    update(chunk) {
      received += BigInt(chunk.length);
      if (received > sizeBytes) throw new RangeError(`snapshot state exceeds its declared ${sizeBytes} bytes`);
      hash.update(chunk);
    },
    digest() {
      if (received !== sizeBytes) throw new RangeError(`snapshot state has ${received} bytes, declared ${sizeBytes}`);
      return hash.digest();
    },
  };
}

/** The part of a snapshot's preimage before its state; see {@link deltaPreimageHeader}. */
export function snapshotPreimageHeader(input: Omit<SnapshotHashInput, "state"> & { sizeBytes: bigint | number }): Uint8Array {
  return concatBytes([
    SNAPSHOT_TAG,
    lp(checkUid(input.streamUid, "streamUid")),
    u64be(input.version),
    checkHash(input.headHash, "headHash"),
    encodingByte(input.encoding),
    u64be(input.sizeBytes),
  ]);
}

/**
 * Digest of a checkpoint: every captured (stream, version, chain hash) plus the resume
 * payload. Entries are sorted by `uid` first, so the digest does not depend on the order a
 * client listed its streams in.
 */
export function checkpointDigest(input: CheckpointDigestInput): Uint8Array {
  return sha256(checkpointPreimage(input));
}

/**
 * `"continuity.v1/checkpoint" 0x00 || u32be(n) || (lp(uid) || u64be(version) || head_hash)* ||
 * u32be(len(resume)) || resume`, entries sorted bytewise by the UTF-8 of their uid.
 */
export function checkpointPreimage(input: CheckpointDigestInput): Uint8Array {
  const entries = input.entries.map((entry) => ({
    uid: utf8(checkUid(entry.streamUid, "streamUid")),
    lpUid: lp(entry.streamUid),
    version: u64be(entry.version),
    headHash: checkHash(entry.headHash, "headHash"),
  }));
  entries.sort((a, b) => compareBytes(a.uid, b.uid));
  for (let i = 1; i < entries.length; i++) {
    if (compareBytes(entries[i - 1]!.uid, entries[i]!.uid) === 0) {
      throw new RangeError("checkpoint names the same stream uid twice");
    }
  }
  const resume = resumePayloadBytes(input.resume);
  return concatBytes([
    CHECKPOINT_TAG,
    u32be(entries.length),
    ...entries.flatMap((entry) => [entry.lpUid, entry.version, entry.headHash]),
    u32be(resume.length),
    resume,
  ]);
}

/**
 * Canonical bytes of a resume payload: RFC 8785 JSON of an object with all five members
 * (`activityType`, `attributes`, `fallbackUrl`, `position`, `resource`), empty ones included.
 * A fixed JSON shape rather than protobuf bytes, because protobuf serialization is not
 * canonical (map order, unknown fields) and these bytes are both hashed and size-limited.
 * An unset payload or unset field counts as empty. Throws `TypeError` for lone surrogates.
 */
export function resumePayloadBytes(resume: Partial<ResumePayload> | undefined): Uint8Array {
  const attributes: JsonObject = {};
  for (const [key, value] of Object.entries(resume?.attributes ?? {})) {
    if (typeof value !== "string") throw new TypeError(`resume attribute ${JSON.stringify(key)} is not a string`);
    defineMember(attributes, key, value);
  }
  return canonicalJson({
    activityType: stringField(resume?.activityType, "activityType"),
    attributes,
    fallbackUrl: stringField(resume?.fallbackUrl, "fallbackUrl"),
    position: stringField(resume?.position, "position"),
    resource: stringField(resume?.resource, "resource"),
  });
}

/** Bytewise order of two byte strings, shorter first on a shared prefix (memcmp order). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

function stringField(value: string | undefined, field: string): string {
  if (value === undefined) return "";
  if (typeof value !== "string") throw new TypeError(`resume field ${field} is not a string`);
  return value;
}

function encodingByte(encoding: DeltaEncoding): Uint8Array {
  if (
    encoding !== DeltaEncoding.DELTA_ENCODING_JSON_PATCH &&
    encoding !== DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH &&
    encoding !== DeltaEncoding.DELTA_ENCODING_OPAQUE
  ) {
    throw new RangeError(`not a hashable delta encoding: ${String(encoding)}`);
  }
  return u8(encoding);
}

function checkHash(hash: Uint8Array, field: string): Uint8Array {
  if (!(hash instanceof Uint8Array) || hash.length !== HASH_LENGTH) {
    throw new RangeError(`${field} must be ${HASH_LENGTH} bytes`);
  }
  return hash;
}

function checkUid(uid: string, field: string): string {
  if (!LOWERCASE_UUID.test(uid)) throw new RangeError(`${field} must be a lowercase UUID, got ${JSON.stringify(uid)}`);
  return uid;
}
