import type { JsonValue } from "@bufbuild/protobuf";
import { continuity } from "@continuity/sdk/gen";
import { createRecordsDigest } from "./digest.js";
import { partJson, recordDigestPieces } from "./proto-json.js";
import { signBundle, type BundleSignatureAlgorithm } from "./signature.js";
import type { CryptoKey, KeyObject } from "jose";

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
