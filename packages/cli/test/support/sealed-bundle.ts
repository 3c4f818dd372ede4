/**
 * Bundles sealed by hand for the CLI's offline tests, with @continuity/bundle's sealer: two
 * streams (one compacted, with a snapshot), an account link, a device and a checkpoint.
 * `mutate` changes the records before sealing, so count and digest still agree and only the
 * deeper checks (hash chain, order) can find the fault.
 */
import { createBundleSealer, frame, type BundleSigningKey } from "@continuity/bundle";
import { continuity } from "@continuity/sdk/gen";
import { canonicalJson, deltaHash, genesisHash, snapshotHash } from "@continuity/sdk/protocol";
import { exportJWK, generateKeyPair } from "jose";

const v1 = continuity.v1;
export const UID_PROGRESS = "00000000-0000-4000-8000-00000000000a";
export const UID_CART = "00000000-0000-4000-8000-00000000000b";

/** A signing key and the JWKS that trusts it. */
export async function signingKey(kid: string): Promise<{ key: BundleSigningKey; jwks: { keys: object[] } }> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  return { key: { privateKey, kid, alg: "ES256" }, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "ES256" }] } };
}

/** `count` merge-patch deltas of one stream, compacted to `horizon` (with its snapshot). */
export function streamRecords(uid: string, id: string, count: number, horizon: number) {
  const encoding = v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;
  let hash: Uint8Array = genesisHash({ uid, type: "org.example.progress", encoding });
  const deltas: continuity.v1.Delta[] = [];
  let horizonHash = hash;
  let state: Record<string, number> = {};
  let horizonState = state;
  for (let version = 1; version <= count; version++) {
    const payload = Buffer.from(canonicalJson({ [`k${version}`]: version }));
    const prevHash = hash;
    hash = deltaHash({ prevHash, version, encoding, payload });
    state = { ...state, [`k${version}`]: version };
    if (version === horizon) [horizonHash, horizonState] = [hash, state];
    if (version > horizon) {
      deltas.push(v1.Delta.fromPartial({ stream: `subjects/s/streams/${id}`, streamUid: uid, version: BigInt(version), encoding, payload, prevHash: Buffer.from(prevHash), hash: Buffer.from(hash), device: "subjects/s/devices/d", clientSequence: BigInt(version), batchFirstVersion: BigInt(version), batchSize: 1 }));
    }
  }
  const stream = v1.Stream.fromPartial({ name: `subjects/s/streams/${id}`, uid, type: "org.example.progress", encoding, conflictPolicy: 2, headVersion: BigInt(count), headHash: Buffer.from(hash), horizonVersion: BigInt(horizon), horizonHash: Buffer.from(horizonHash) });
  const stateBytes = Buffer.from(canonicalJson(horizonState));
  const snapshot =
    horizon === 0
      ? undefined
      : v1.BundleSnapshot.fromPartial({
          header: { stream: "", streamUid: uid, version: BigInt(horizon), headHash: Buffer.from(horizonHash), encoding, sizeBytes: BigInt(stateBytes.length), snapshotHash: Buffer.from(snapshotHash({ streamUid: uid, version: horizon, headHash: horizonHash, encoding, state: stateBytes })) },
          state: stateBytes,
        });
  const summary = v1.BundleStreamSummary.fromPartial({ streamUid: uid, streamId: id, type: stream.type, headVersion: stream.headVersion, headHash: stream.headHash, horizonVersion: stream.horizonVersion, deltaCount: BigInt(deltas.length) });
  return { stream, snapshot, deltas, summary };
}

/** The parts of a signed bundle: `progress` (5 deltas, horizon 2) and `cart` (`cartDeltas`, no horizon), then identity records. */
export async function sealBundle(key: BundleSigningKey, options: { readonly mutate?: (records: continuity.v1.BundleRecord[]) => void; readonly cartDeltas?: number } = {}): Promise<Uint8Array[]> {
  const progress = streamRecords(UID_PROGRESS, "progress", 5, 2);
  const cart = streamRecords(UID_CART, "cart", options.cartDeltas ?? 3, 0);
  const records: continuity.v1.BundleRecord[] = [];
  for (const s of [progress, cart]) {
    records.push({ record: { $case: "stream", value: s.stream } });
    if (s.snapshot !== undefined) records.push({ record: { $case: "snapshot", value: s.snapshot } });
    for (const d of s.deltas) records.push({ record: { $case: "delta", value: d } });
  }
  records.push({ record: { $case: "checkpoint", value: v1.Checkpoint.fromPartial({ name: "subjects/s/checkpoints/c1", createTime: new Date(1_700_000_000_000) }) } });
  records.push({ record: { $case: "accountLink", value: v1.AccountLink.fromPartial({ name: "subjects/s/accountLinks/l1", platform: "platforms/a", accountId: "u1", createTime: new Date(1_700_000_000_123) }) } });
  records.push({ record: { $case: "device", value: v1.Device.fromPartial({ name: "subjects/s/devices/d", platform: "platforms/a" }) } });
  options.mutate?.(records);
  const sealer = createBundleSealer();
  const parts = [sealer.manifest({ formatVersion: 1, exporter: "cli-test/1", createTime: new Date(1_700_000_000_000), streams: [progress.summary, cart.summary] })];
  for (const record of records) parts.push(sealer.record(record));
  parts.push(await sealer.trailer(key));
  return parts;
}

/** The `.cbundle` file form of parts. */
export function bundleFile(parts: readonly Uint8Array[]): Buffer {
  return Buffer.concat(parts.map((part) => frame(part)));
}
