import { continuity } from "@continuity/sdk/gen";
import { canonicalJson, deltaHash, genesisHash, snapshotHash } from "@continuity/sdk/protocol";
import { exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { BundleFramingError, BundleVerificationError, createBundleSealer, createBundleVerifier, frame, readFrames, type BundleSigningKey } from "./index.js";

const v1 = continuity.v1;
const UID_A = "00000000-0000-4000-8000-00000000000a";
const UID_B = "00000000-0000-4000-8000-00000000000b";

async function keyPair(kid: string): Promise<{ key: BundleSigningKey; jwks: { keys: object[] } }> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  return { key: { privateKey, kid, alg: "ES256" }, jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: "ES256" }] } };
}

/** A stream of `count` merge-patch deltas, compacted to `horizon` (with its snapshot). */
function streamRecords(uid: string, id: string, count: number, horizon: number) {
  const encoding = v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;
  let hash: Uint8Array = genesisHash({ uid, type: "org.example.t", encoding });
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
    if (version > horizon) deltas.push(v1.Delta.fromPartial({ stream: `subjects/s/streams/${id}`, streamUid: uid, version: BigInt(version), encoding, payload, prevHash: Buffer.from(prevHash), hash: Buffer.from(hash), device: "subjects/s/devices/d", clientSequence: BigInt(version), batchFirstVersion: BigInt(version), batchSize: 1 }));
  }
  const stream = v1.Stream.fromPartial({ name: `subjects/s/streams/${id}`, uid, type: "org.example.t", encoding, conflictPolicy: 2, headVersion: BigInt(count), headHash: Buffer.from(hash), horizonVersion: BigInt(horizon), horizonHash: Buffer.from(horizonHash) });
  const stateBytes = Buffer.from(canonicalJson(horizonState));
  const snapshot =
    horizon === 0
      ? undefined
      : v1.BundleSnapshot.fromPartial({ header: { stream: "", streamUid: uid, version: BigInt(horizon), headHash: Buffer.from(horizonHash), encoding, sizeBytes: BigInt(stateBytes.length), snapshotHash: Buffer.from(snapshotHash({ streamUid: uid, version: horizon, headHash: horizonHash, encoding, state: stateBytes })) }, state: stateBytes });
  const summary = v1.BundleStreamSummary.fromPartial({ streamUid: uid, streamId: id, type: stream.type, headVersion: stream.headVersion, headHash: stream.headHash, horizonVersion: stream.horizonVersion, deltaCount: BigInt(deltas.length) });
  return { stream, snapshot, deltas, summary };
}

async function sealBundle(key: BundleSigningKey, options: { mutate?: (records: continuity.v1.BundleRecord[]) => void } = {}): Promise<Uint8Array[]> {
  const a = streamRecords(UID_A, "progress", 5, 2);
  const b = streamRecords(UID_B, "cart", 3, 0);
  const records: continuity.v1.BundleRecord[] = [];
  for (const s of [a, b]) {
    records.push({ record: { $case: "stream", value: s.stream } });
    if (s.snapshot !== undefined) records.push({ record: { $case: "snapshot", value: s.snapshot } });
    for (const d of s.deltas) records.push({ record: { $case: "delta", value: d } });
  }
  records.push({ record: { $case: "accountLink", value: v1.AccountLink.fromPartial({ name: "subjects/s/accountLinks/l1", platform: "platforms/a", accountId: "u1", createTime: new Date(1_700_000_000_123) }) } });
  records.push({ record: { $case: "device", value: v1.Device.fromPartial({ name: "subjects/s/devices/d", platform: "platforms/a" }) } });
  options.mutate?.(records);
  const sealer = createBundleSealer();
  const parts = [sealer.manifest({ formatVersion: 1, exporter: "test/1", createTime: new Date(0), streams: [a.summary, b.summary] })];
  for (const record of records) parts.push(sealer.record(record));
  parts.push(await sealer.trailer(key));
  return parts;
}

async function verifyAll(parts: readonly Uint8Array[], jwks?: { keys: object[] }) {
  const verifier = createBundleVerifier(jwks === undefined ? {} : { jwks: jwks as never });
  const kinds: string[] = [];
  for (const part of parts) kinds.push((await verifier.push(part)).kind);
  return { kinds, result: verifier.finish() };
}

async function problemOf(parts: readonly Uint8Array[], jwks?: { keys: object[] }): Promise<BundleVerificationError> {
  const error = await verifyAll(parts, jwks).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BundleVerificationError);
  return error as BundleVerificationError;
}

function withRecord(parts: Uint8Array[], at: number, change: (record: continuity.v1.BundleRecord) => continuity.v1.BundleRecord): Uint8Array[] {
  const copy = [...parts];
  const decoded = v1.ExportSubjectResponse.decode(copy[at]!);
  if (decoded.part?.$case !== "record") throw new Error("not a record");
  copy[at] = v1.ExportSubjectResponse.encode({ part: { $case: "record", value: change(decoded.part.value) } }).finish();
  return copy;
}

describe("bundles", () => {
  it("seals a bundle that verifies, signature included", async () => {
    const { key, jwks } = await keyPair("k1");
    const { kinds, result } = await verifyAll(await sealBundle(key), jwks);
    expect(kinds).toEqual(["manifest", "stream", "snapshot", "delta", "delta", "delta", "stream", "delta", "delta", "delta", "accountLink", "device", "trailer"]);
    expect(result.trailer.recordCount).toBe(11n);
    expect(result.signedBy).toBe("k1");
  });

  it("names the record whose payload breaks the chain", async () => {
    const { key } = await keyPair("k1");
    // Tampered before sealing, so count and digest agree and only the chain can tell.
    const parts = await sealBundle(key, {
      mutate: (records) => {
        const r = records[3]!.record as { $case: "delta"; value: continuity.v1.Delta };
        r.value = { ...r.value, payload: Buffer.from('{"k4":5}') };
      },
    });
    const problem = await problemOf(parts);
    expect([problem.field, problem.recordIndex]).toEqual(["records[3].delta.hash", 3]);
  });

  it("refuses a changed record through the digest, and a wrong count", async () => {
    const { key } = await keyPair("k1");
    const parts = await sealBundle(key);
    const changed = withRecord(parts, 11, (r) => ({ record: { $case: "device", value: { ...(r.record!.value as continuity.v1.Device), displayName: "x" } } }));
    expect((await problemOf(changed)).field).toBe("trailer.records_digest");
    const trailer = v1.ExportSubjectResponse.decode(parts.at(-1)!).part as { value: continuity.v1.BundleTrailer };
    const recounted = [...parts.slice(0, -1), v1.ExportSubjectResponse.encode({ part: { $case: "trailer", value: { ...trailer.value, recordCount: 12n } } }).finish()];
    expect((await problemOf(recounted)).field).toBe("trailer.record_count");
  });

  it("refuses a dropped delta and records out of order", async () => {
    const { key } = await keyPair("k1");
    const dropped = await sealBundle(key, { mutate: (records) => records.splice(3, 1) });
    expect((await problemOf(dropped)).field).toBe("records[3].delta.version");
    const lastDropped = await sealBundle(key, { mutate: (records) => records.splice(4, 1) });
    expect((await problemOf(lastDropped)).message).toMatch(/manifest counts 3 delta records, the bundle holds 2/);
    const reordered = await sealBundle(key, { mutate: (records) => records.push(records.splice(9, 1)[0]!) });
    expect((await problemOf(reordered)).field).toBe("records[10]");
  });

  it("reads a stream with a horizon and as many deltas as lie above it as full when its snapshot follows, as incremental from its horizon when none does (PORT-051)", async () => {
    const { key } = await keyPair("k1");
    type Streamed = ReturnType<typeof streamRecords>;
    /** Seals `streams`, each with its snapshot or not and with its last `deltas` deltas (all by default). */
    const seal = async (streams: readonly { s: Streamed; snapshot: boolean; deltas?: number }[]) => {
      const sealer = createBundleSealer();
      const chosen = streams.map(({ s, snapshot, deltas }) => ({ s, snapshot, deltas: s.deltas.slice(s.deltas.length - (deltas ?? s.deltas.length)) }));
      const parts = [sealer.manifest({ formatVersion: 1, exporter: "test/1", createTime: new Date(0), streams: chosen.map(({ s, deltas }) => ({ ...s.summary, deltaCount: BigInt(deltas.length) })) })];
      for (const { s, snapshot, deltas } of chosen) {
        parts.push(sealer.record({ record: { $case: "stream", value: s.stream } }));
        if (snapshot && s.snapshot !== undefined) parts.push(sealer.record({ record: { $case: "snapshot", value: s.snapshot } }));
        for (const d of deltas) parts.push(sealer.record({ record: { $case: "delta", value: d } }));
      }
      parts.push(await sealer.trailer(key));
      return parts;
    };
    const read = async (parts: readonly Uint8Array[]) => {
      const verifier = createBundleVerifier();
      const seen: unknown[] = [];
      for (const part of parts) {
        const verified = await verifier.push(part);
        seen.push(verified.kind === "stream" ? [verified.kind, { incremental: verified.incremental, snapshotOptional: verified.snapshotOptional }] : verified.kind);
      }
      verifier.finish();
      return seen;
    };
    const optional = ["stream", { incremental: false, snapshotOptional: true }];
    const grown = streamRecords(UID_A, "progress", 5, 2);
    const flat = streamRecords(UID_B, "flat", 2, 2);
    // Full: each snapshot record follows its stream record.
    expect(await read(await seal([{ s: grown, snapshot: true }, { s: flat, snapshot: true }]))).toEqual(["manifest", optional, "snapshot", "delta", "delta", "delta", optional, "snapshot", "trailer"]);
    // Incremental from the horizons: no snapshot records; a stream compacted at its head carries no delta either.
    expect(await read(await seal([{ s: grown, snapshot: false }, { s: flat, snapshot: false }]))).toEqual(["manifest", optional, "delta", "delta", "delta", optional, "trailer"]);
    // Fewer deltas than lie above the horizon: incremental at once, and a snapshot record there is refused.
    const later = ["stream", { incremental: true, snapshotOptional: false }];
    expect(await read(await seal([{ s: grown, snapshot: false, deltas: 2 }]))).toEqual(["manifest", later, "delta", "delta", "trailer"]);
    expect((await problemOf(await seal([{ s: grown, snapshot: true, deltas: 2 }]))).message).toMatch(/a snapshot record where none belongs/);
    // No horizon: full, its snapshot neither needed nor optional.
    expect(await read(await seal([{ s: streamRecords(UID_B, "cart", 3, 0), snapshot: false }]))).toEqual(["manifest", ["stream", { incremental: false, snapshotOptional: false }], "delta", "delta", "delta", "trailer"]);
  });

  it("refuses a signature by an untrusted key or over other facts", async () => {
    const { key } = await keyPair("k1");
    const other = await keyPair("k1");
    expect((await problemOf(await sealBundle(key), other.jwks)).field).toBe("trailer.signature");
    const { jwks } = await keyPair("k2");
    expect((await problemOf(await sealBundle(key), jwks)).message).toMatch(/no trusted key has kid k1/);
  });

  it("frames parts and reads them back across any chunking, refusing truncation and huge lengths", async () => {
    const { key } = await keyPair("k1");
    const parts = await sealBundle(key);
    const file = Buffer.concat(parts.map((p) => frame(p)));
    async function* chunks(size: number) {
      for (let i = 0; i < file.length; i += size) yield file.subarray(i, i + size);
    }
    for (const size of [1, 3, 7, 4096]) {
      const read: Uint8Array[] = [];
      for await (const part of readFrames(chunks(size))) read.push(part);
      expect(read.map((p) => Buffer.from(p).toString("hex"))).toEqual(parts.map((p) => Buffer.from(p).toString("hex")));
    }
    async function* truncated() {
      yield file.subarray(0, file.length - 1);
    }
    await expect(async () => {
      for await (const _ of readFrames(truncated())) void _;
    }).rejects.toThrow(BundleFramingError);
    async function* huge() {
      yield Buffer.from([0xff, 0xff, 0xff, 0xff]);
    }
    await expect(async () => {
      for await (const _ of readFrames(huge(), { maxPartBytes: 1024 })) void _;
    }).rejects.toThrow(/declares 4294967295 bytes/);
  });
});

describe("bundle batches and horizons", () => {
  it("refuses deltas outside their batch, a batch whose deltas disagree, and a bad horizon hash", async () => {
    const { key } = await keyPair("k1");
    const noBatch = await sealBundle(key, {
      mutate: (records) => {
        const r = records[2]!.record as { $case: "delta"; value: continuity.v1.Delta };
        r.value = { ...r.value, batchFirstVersion: 0n, batchSize: 0 };
      },
    });
    expect((await problemOf(noBatch)).field).toBe("records[2].delta.batch_first_version");
    // Versions 4 and 5 claim one batch starting at 4, but 5 names another client sequence.
    const split = await sealBundle(key, {
      mutate: (records) => {
        for (const [at, sequence] of [[3, 4n], [4, 9n]] as const) {
          const r = records[at]!.record as { $case: "delta"; value: continuity.v1.Delta };
          r.value = { ...r.value, batchFirstVersion: 4n, batchSize: 2, clientSequence: sequence };
        }
      },
    });
    expect((await problemOf(split)).field).toBe("records[4].delta.batch_first_version");
    const emptyHorizon = await sealBundle(key, {
      mutate: (records) => {
        const r = records[5]!.record as { $case: "stream"; value: continuity.v1.Stream };
        r.value = { ...r.value, horizonHash: Buffer.alloc(0) };
      },
    });
    expect((await problemOf(emptyHorizon)).field).toBe("records[5].stream.horizon_hash");
  });
});

describe("records digest", () => {
  it("canonicalizes proto3 JSON exactly as the SDK's RFC 8785 canonical JSON does", async () => {
    const { protoJsonCanonical } = await import("./digest.js");
    const samples = [
      { b: "é\u2028\"\\", a: [1, 2.5, -0, 1e21, 1e-7], c: { "\u00e9": true, e: null, "€": "x", Z: false }, "": "" },
      { payload: Buffer.alloc(300, 7).toString("base64"), version: "18446744073709551615", nested: [{ y: 1, x: 2 }] },
    ];
    for (const sample of samples) expect(protoJsonCanonical(sample)).toBe(Buffer.from(canonicalJson(sample)).toString("utf8"));
  });
});

describe("proto3 JSON of bulk records", () => {
  it("writes a delta's payload and a snapshot's state exactly as the descriptor codec does", async () => {
    const { fromBinary, toJson, createFileRegistry } = await import("@bufbuild/protobuf");
    const { FileDescriptorSetSchema } = await import("@bufbuild/protobuf/wkt");
    const { readFileSync } = await import("node:fs");
    const { partJson } = await import("./proto-json.js");
    const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(new URL("./continuity-v1.binpb", import.meta.url))));
    const part = registry.getMessage("continuity.v1.ExportSubjectResponse")!;
    const record = registry.getMessage("continuity.v1.BundleRecord")!;
    const samples: continuity.v1.BundleRecord[] = [
      { record: { $case: "delta", value: v1.Delta.fromPartial({ streamUid: UID_A, version: 3n, payload: Buffer.from([0, 255, 1, 2, 3]), hash: Buffer.alloc(32, 1), batchSize: 1, commitTime: new Date(1_700_000_000_123) }) } },
      { record: { $case: "delta", value: v1.Delta.fromPartial({ streamUid: UID_A, version: 4n, payload: Buffer.alloc(0) }) } },
      { record: { $case: "snapshot", value: v1.BundleSnapshot.fromPartial({ header: { streamUid: UID_B, version: 2n }, state: Buffer.from("{\"a\":1}") }) } },
      { record: { $case: "device", value: v1.Device.fromPartial({ name: "subjects/s/devices/d" }) } },
    ];
    for (const sample of samples) {
      const bytes = v1.ExportSubjectResponse.encode({ part: { $case: "record", value: sample } }).finish();
      const generic = fromBinary(part, bytes) as unknown as { part: { value: never } };
      expect(partJson(bytes)).toEqual(toJson(record, generic.part.value));
    }
  });
});

describe("records of megabytes, sealed in slices", () => {
  it("gives a snapshot of a few megabytes the bytes and digest of one sealed at once", async () => {
    const { key } = await keyPair("k1");
    const state = Buffer.from(canonicalJson({ s: "x".repeat(3 * 1024 * 1024 + 17) }));
    const snapshot = v1.BundleSnapshot.fromPartial({ header: { streamUid: UID_B, version: 2n, sizeBytes: BigInt(state.length), snapshotHash: Buffer.alloc(32, 3) }, state });
    const manifest = { formatVersion: 1, exporter: "test/1", createTime: new Date(0), streams: [] };
    const records: continuity.v1.BundleRecord[] = [
      { record: { $case: "snapshot", value: snapshot } },
      { record: { $case: "device", value: v1.Device.fromPartial({ name: "subjects/s/devices/d" }) } },
    ];
    const atOnce = createBundleSealer();
    const sliced = createBundleSealer();
    const parts = [[atOnce.manifest(manifest)], [sliced.manifest(manifest)]];
    for (const record of records) {
      parts[0]!.push(atOnce.record(record));
      parts[1]!.push(await sliced.recordSliced(record));
    }
    parts[0]!.push(await atOnce.trailer(key));
    parts[1]!.push(await sliced.trailer(key));
    expect(Buffer.from(parts[1]![1]!).equals(Buffer.from(parts[0]![1]!))).toBe(true);
    expect(Buffer.from(parts[1]![2]!).equals(Buffer.from(parts[0]![2]!))).toBe(true);
    const digestOf = (trailer: Uint8Array) => {
      const decoded = v1.ExportSubjectResponse.decode(trailer);
      return decoded.part?.$case === "trailer" ? Buffer.from(decoded.part.value.recordsDigest).toString("hex") : undefined;
    };
    expect(digestOf(parts[1]![3]!)).toBe(digestOf(parts[0]![3]!));
    expect(digestOf(parts[1]![3]!)).toMatch(/^[0-9a-f]{64}$/);
  });
});
