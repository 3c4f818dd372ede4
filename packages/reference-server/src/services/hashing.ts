import { createHash } from "node:crypto";
import { sha256Sliced } from "./sliced-json.js";
import {
  deltaPreimage,
  deltaPreimageHeader,
  genesisPreimage,
  snapshotPreimageHeader,
  type DeltaHashInput,
  type GenesisInput,
  type SnapshotHashInput,
} from "@continuity/sdk/protocol";

/**
 * The protocol's hashes (docs/spec/hashing.md) on the server, over the SDK's preimages but
 * with node:crypto's SHA-256 instead of the SDK's portable pure-JS one: several times faster,
 * which matters for every delta appended and for every megabyte of state a snapshot hashes.
 * The bytes hashed are the SDK's, so the results are the same (the hash vectors check it).
 */

const sha256 = (...parts: readonly Uint8Array[]): Uint8Array => {
  const hash = createHash("sha256");
  for (const part of parts) hash.update(part);
  return new Uint8Array(hash.digest());
};

/** `genesisHash` of the SDK. */
export function genesisHash(input: GenesisInput): Uint8Array {
  return sha256(genesisPreimage(input));
}

/** `deltaHash` of the SDK. */
export function deltaHash(input: DeltaHashInput): Uint8Array {
  return sha256(deltaPreimage(input));
}

/** `snapshotHash` of the SDK, without copying the state behind its header. */
export function snapshotHash(input: SnapshotHashInput): Uint8Array {
  return sha256(snapshotPreimageHeader({ ...input, sizeBytes: input.state.length }), input.state);
}

/** {@link snapshotHash} of a state of megabytes, hashed in slices so that other calls are answered meanwhile. */
export function snapshotHashSliced(input: SnapshotHashInput): Promise<Uint8Array> {
  return sha256Sliced([snapshotPreimageHeader({ ...input, sizeBytes: input.state.length }), input.state]);
}

/** {@link deltaHash} of a payload of megabytes (a restore's compensating delta), hashed in slices. */
export function deltaHashSliced(input: DeltaHashInput): Promise<Uint8Array> {
  return sha256Sliced([deltaPreimageHeader({ ...input, payloadLength: input.payload.length }), input.payload]);
}
