// The suite's only door to hashing: every hash a server sends is recomputed here with the
// independent implementation in ../hash (not the SDK's), so that one shared bug cannot make
// a broken server and a broken suite agree.
import * as hash from "../hash/index.js";
import { fail } from "./expect.js";

/** Resume payload fields as the generated message carries them. */
export type ResumeFields = hash.ResumeFields;

// The hash code rejects malformed inputs (a 31-byte prev_hash, encoding 0) with RangeError;
// those inputs come from the server, so they are the server's failure, not the harness's.
function guarded<T>(what: string, compute: () => T): T {
  try {
    return compute();
  } catch (error) {
    if (error instanceof RangeError) return fail(`${what}: the server sent an unhashable value (${error.message})`);
    throw error;
  }
}

/** SHA-256 genesis hash of a stream (head hash at version 0). */
export function genesisHash(input: { uid: string; type: string; encoding: number }): Uint8Array {
  return guarded("genesis hash", () => hash.genesisHash(input));
}

/** The chain hash of one delta. */
export function deltaHash(input: { prevHash: Uint8Array; version: bigint; encoding: number; payload: Uint8Array }): Uint8Array {
  return guarded(`delta hash of version ${input.version}`, () => hash.deltaHash(input));
}

/** The snapshot hash over a state at a version. */
export function snapshotHash(input: { streamUid: string; version: bigint; headHash: Uint8Array; encoding: number; state: Uint8Array }): Uint8Array {
  return guarded(`snapshot hash at version ${input.version}`, () => hash.snapshotHash(input));
}

/** The checkpoint digest over entries and the resume payload. */
export function checkpointDigest(input: { entries: readonly { streamUid: string; version: bigint; headHash: Uint8Array }[]; resume: ResumeFields | undefined }): Uint8Array {
  return guarded("checkpoint digest", () => hash.checkpointDigest(input));
}

/** RFC 8785 canonical JSON bytes of a JSON value. */
export function canonicalJson(value: unknown): Uint8Array {
  return hash.canonicalJson(value);
}

/** Canonical bytes of a resume payload (what the 4096-byte limit measures). */
export function resumePayloadBytes(resume: ResumeFields | undefined): Uint8Array {
  return hash.resumePayloadBytes(resume);
}

/** Independent RFC 6902 / RFC 7396 application, for expected states of generated histories. */
export const applyJsonPatch = hash.applyJsonPatch;
export const applyMergePatch = hash.applyMergePatch;
