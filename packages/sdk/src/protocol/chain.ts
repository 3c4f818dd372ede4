/**
 * Verification of a stored or received run of deltas against the hash chain. A client that
 * verifies what it reads does not have to trust the server, or the server it migrated from.
 */
import type { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { bytesEqual, toUint64 } from "./bytes.js";
import { deltaHash } from "./hashes.js";

/** The fields of a delta that the chain covers; a generated `Delta` fits as is. */
export interface ChainDelta {
  /** The delta's version. */
  version: bigint | number;
  /** The stored payload (canonical JSON bytes or opaque bytes). */
  payload: Uint8Array;
  /** The delta's claimed chain hash. */
  hash: Uint8Array;
  /** The claimed previous hash; checked when present. */
  prevHash?: Uint8Array | undefined;
  /** The delta's encoding; checked against the stream's when present. */
  encoding?: DeltaEncoding | undefined;
}

/** Where verification starts: the genesis (version 0), or a horizon or snapshot the caller trusts. */
export interface ChainStart {
  /** The version the run continues from; the first delta must be `version + 1`. */
  version: bigint | number;
  /** The chain hash at `version`. */
  hash: Uint8Array;
}

/** Why a delta broke the chain. */
export type ChainBreak = "version-gap" | "encoding-mismatch" | "prev-hash-mismatch" | "hash-mismatch";

/** Outcome of `verifyChain`: the verified head, or the first delta that does not verify. */
export type ChainVerification =
  | { ok: true; headVersion: bigint; headHash: Uint8Array }
  | { ok: false; brokenVersion: bigint; reason: ChainBreak; lastGoodVersion: bigint; lastGoodHash: Uint8Array };

/**
 * Verifies that `deltas` continue the chain from `start`: versions consecutive from
 * `start.version + 1`, each `prevHash` (if given) equal to the previous hash, and each `hash`
 * equal to the recomputed delta hash. Stops at the first broken delta and reports its version
 * (for a gap: the version that was expected) together with the last verified point.
 */
export function verifyChain(input: { start: ChainStart; encoding: DeltaEncoding; deltas: Iterable<ChainDelta> }): ChainVerification {
  let version = toUint64(input.start.version);
  let hash = input.start.hash;
  const broken = (brokenVersion: bigint, reason: ChainBreak): ChainVerification => ({
    ok: false,
    brokenVersion,
    reason,
    lastGoodVersion: version,
    lastGoodHash: hash,
  });
  for (const delta of input.deltas) {
    const expectedVersion = version + 1n;
    if (toUint64(delta.version) !== expectedVersion) return broken(expectedVersion, "version-gap");
    if (delta.encoding !== undefined && delta.encoding !== input.encoding) return broken(expectedVersion, "encoding-mismatch");
    if (delta.prevHash !== undefined && !bytesEqual(delta.prevHash, hash)) return broken(expectedVersion, "prev-hash-mismatch");
    const recomputed = deltaHash({ prevHash: hash, version: expectedVersion, encoding: input.encoding, payload: delta.payload });
    if (!bytesEqual(recomputed, delta.hash)) return broken(expectedVersion, "hash-mismatch");
    version = expectedVersion;
    hash = recomputed;
  }
  return { ok: true, headVersion: version, headHash: hash };
}
