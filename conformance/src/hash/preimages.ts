/**
 * The suite's own construction of the hash preimages of docs/spec/hashing.md, with node:crypto
 * SHA-256 and Buffers, written from the spec rather than from the SDK so that the two can
 * only agree by both being right.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "./strict-json.js";

/** Resume payload fields as the generated message has them. */
export interface ResumeFields {
  activityType?: string;
  resource?: string;
  position?: string;
  fallbackUrl?: string;
  attributes?: Record<string, string>;
}

const tag = (name: string) => Buffer.concat([Buffer.from(`continuity.v1/${name}`, "ascii"), Buffer.alloc(1)]);

function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

function u64(value: bigint | number): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64BE(BigInt(value));
  return out;
}

function encodingByte(encoding: number): Buffer {
  if (![1, 2, 3].includes(encoding)) throw new RangeError(`encoding ${encoding}`);
  return Buffer.of(encoding);
}

function lengthPrefixed(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  return Buffer.concat([u32(bytes.length), bytes]);
}

function hash32(bytes: Uint8Array, what: string): Buffer {
  if (bytes.length !== 32) throw new RangeError(`${what} must be 32 bytes`);
  return Buffer.from(bytes);
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(bytes).digest());
}

/** Genesis preimage (HASH-010). */
export function genesisPreimage(input: { uid: string; type: string; encoding: number }): Uint8Array {
  return Buffer.concat([tag("genesis"), lengthPrefixed(input.uid), lengthPrefixed(input.type), encodingByte(input.encoding)]);
}

/** Genesis hash. */
export function genesisHash(input: { uid: string; type: string; encoding: number }): Uint8Array {
  return sha256(genesisPreimage(input));
}

/** Delta preimage (HASH-011). */
export function deltaPreimage(input: { prevHash: Uint8Array; version: bigint | number; encoding: number; payload: Uint8Array }): Uint8Array {
  return Buffer.concat([tag("delta"), hash32(input.prevHash, "prevHash"), u64(input.version), encodingByte(input.encoding), u32(input.payload.length), input.payload]);
}

/** Delta hash. */
export function deltaHash(input: { prevHash: Uint8Array; version: bigint | number; encoding: number; payload: Uint8Array }): Uint8Array {
  return sha256(deltaPreimage(input));
}

/** Snapshot preimage (HASH-013). */
export function snapshotPreimage(input: { streamUid: string; version: bigint | number; headHash: Uint8Array; encoding: number; state: Uint8Array }): Uint8Array {
  return Buffer.concat([
    tag("snapshot"),
    lengthPrefixed(input.streamUid),
    u64(input.version),
    hash32(input.headHash, "headHash"),
    encodingByte(input.encoding),
    u64(input.state.length),
    input.state,
  ]);
}

/** Snapshot hash. */
export function snapshotHash(input: { streamUid: string; version: bigint | number; headHash: Uint8Array; encoding: number; state: Uint8Array }): Uint8Array {
  return sha256(snapshotPreimage(input));
}

/** Canonical resume payload bytes (HASH-040). */
export function resumePayloadBytes(resume: ResumeFields | undefined): Uint8Array {
  return canonicalJson({
    activityType: resume?.activityType ?? "",
    attributes: { ...(resume?.attributes ?? {}) },
    fallbackUrl: resume?.fallbackUrl ?? "",
    position: resume?.position ?? "",
    resource: resume?.resource ?? "",
  });
}

/** Checkpoint preimage (HASH-042): entries sorted bytewise by UTF-8 uid. */
export function checkpointPreimage(input: {
  entries: readonly { streamUid: string; version: bigint | number; headHash: Uint8Array }[];
  resume: ResumeFields | undefined;
}): Uint8Array {
  const sorted = [...input.entries].sort((a, b) => Buffer.compare(Buffer.from(a.streamUid, "utf8"), Buffer.from(b.streamUid, "utf8")));
  const resume = resumePayloadBytes(input.resume);
  return Buffer.concat([
    tag("checkpoint"),
    u32(sorted.length),
    ...sorted.flatMap((entry) => [lengthPrefixed(entry.streamUid), u64(entry.version), hash32(entry.headHash, "headHash")]),
    u32(resume.length),
    resume,
  ]);
}

/** Checkpoint digest. */
export function checkpointDigest(input: {
  entries: readonly { streamUid: string; version: bigint | number; headHash: Uint8Array }[];
  resume: ResumeFields | undefined;
}): Uint8Array {
  return sha256(checkpointPreimage(input));
}
