import type { JsonValue } from "@bufbuild/protobuf";
import { continuity } from "@continuity/sdk/gen";
import { createRecordsDigest } from "./digest.js";
import { partJson, recordDigestPieces } from "./proto-json.js";
import { signBundle, type BundleSignatureAlgorithm } from "./signature.js";
import type { CryptoKey, KeyObject } from "jose";
import { setImmediate as nextTurn } from "node:timers/promises";

const v1 = continuity.v1;

/** The exporter's key a bundle is signed with. */
export interface BundleSigningKey {
  readonly privateKey: CryptoKey | KeyObject;
  readonly kid: string;
  readonly alg: BundleSignatureAlgorithm;
}

/** Writes one bundle part by part: each call returns the part's protobuf bytes, ready to send or frame. */
export interface BundleSealer {
  manifest(manifest: continuity.v1.BundleManifest): Uint8Array;
  record(record: continuity.v1.BundleRecord): Uint8Array;
  /**
   * {@link record} for a record of megabytes, giving the event loop a turn after each megabyte
   * copied and digested: a snapshot of a state near `max_snapshot_bytes` takes most of a second
   * to encode and digest in one go. The same bytes and digest as `record`. Write nothing else
   * until it settles.
   */
  recordSliced(record: continuity.v1.BundleRecord): Promise<Uint8Array>;
  /** The trailer: record count, records digest and the signature over them and the manifest. */
  trailer(key: BundleSigningKey): Promise<Uint8Array>;
  /** Records written so far. */
  readonly recordCount: bigint;
}

/**
 * Builds a bundle in order, keeping the records digest as it goes, so an exporter streams
 * any number of records in constant memory. The digest is taken over each part's proto3
 * JSON as read back from the exact bytes returned, so what is signed is what is sent.
 */
export function createBundleSealer(): BundleSealer {
  const digest = createRecordsDigest();
  let manifestJson: JsonValue | undefined;
  return {
    manifest(manifest) {
      if (manifestJson !== undefined) throw new Error("a bundle has one manifest");
      const bytes = v1.ExportSubjectResponse.encode({ part: { $case: "manifest", value: manifest } }).finish();
      manifestJson = partJson(bytes);
      return bytes;
    },
    record(record) {
      if (manifestJson === undefined) throw new Error("the manifest comes first");
      const bytes = v1.ExportSubjectResponse.encode({ part: { $case: "record", value: record } }).finish();
      digest.addPieces(recordDigestPieces(bytes)!);
      return bytes;
    },
    async recordSliced(record) {
      if (manifestJson === undefined) throw new Error("the manifest comes first");
      const bytes = record.record?.$case === "snapshot" && record.record.value.state.length > SLICE_BYTES ? await encodeSnapshotPart(record.record.value) : v1.ExportSubjectResponse.encode({ part: { $case: "record", value: record } }).finish();
      await digest.addPiecesSliced(recordDigestPieces(bytes)!);
      return bytes;
    },
    async trailer(key) {
      if (manifestJson === undefined) throw new Error("the manifest comes first");
      const recordsDigest = digest.digest();
      const signature = await signBundle({ manifest: manifestJson, recordCount: digest.count, recordsDigest }, key);
      return v1.ExportSubjectResponse.encode({ part: { $case: "trailer", value: { recordCount: digest.count, recordsDigest: Buffer.from(recordsDigest), signature } } }).finish();
    },
    get recordCount() {
      return digest.count;
    },
  };
}

/** Bytes copied between two turns of the event loop. */
const SLICE_BYTES = 1 << 20;
/** Tag of a length-delimited field 2: `ExportSubjectResponse.record`, `BundleRecord.snapshot` and `BundleSnapshot.state` are all field 2. */
const FIELD_2 = 0x12;

function varint(value: number): number[] {
  const bytes: number[] = [];
  for (; value >= 0x80; value = Math.floor(value / 0x80)) bytes.push((value % 0x80) | 0x80);
  bytes.push(value);
  return bytes;
}

/**
 * The part `ExportSubjectResponse{record: BundleRecord{snapshot}}` as protobuf writes it
 * (fields in order: the header, then the state), with the state copied a megabyte per turn.
 */
async function encodeSnapshotPart(snapshot: continuity.v1.BundleSnapshot): Promise<Uint8Array> {
  const state = snapshot.state;
  const header = v1.BundleSnapshot.encode({ header: snapshot.header, state: Buffer.alloc(0) }).finish();
  const stateField = [FIELD_2, ...varint(state.length)];
  const snapshotLength = header.length + stateField.length + state.length;
  const snapshotField = [FIELD_2, ...varint(snapshotLength)];
  const recordLength = snapshotField.length + snapshotLength;
  const prefix = Buffer.from([FIELD_2, ...varint(recordLength), ...snapshotField, ...header, ...stateField]);
  const part = Buffer.allocUnsafe(prefix.length + state.length);
  part.set(prefix, 0);
  for (let at = 0; at < state.length; at += SLICE_BYTES) {
    if (at > 0) await nextTurn();
    part.set(state.subarray(at, at + SLICE_BYTES), prefix.length + at);
  }
  return part;
}
