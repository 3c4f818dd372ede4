import { createHash, type Hash } from "node:crypto";
import type { JsonValue } from "@bufbuild/protobuf";
import { canonicalJson } from "@continuity/sdk/protocol";

/** The domain tag the records digest starts with, NUL included. */
export const RECORDS_DIGEST_TAG = "continuity.v1/bundle-records\u0000";

/** An incremental records digest: feed each record's proto3 JSON in bundle order. */
export interface RecordsDigest {
  /** Adds the next record. */
  add(recordJson: JsonValue): void;
  /** How many records were added. */
  readonly count: bigint;
  /** The digest over every record added; the digest cannot be extended afterwards. */
  digest(): Uint8Array;
}

/**
 * `SHA-256("continuity.v1/bundle-records" 0x00 || for each record: u64be(len(c)) || c)`, where
 * `c` is the RFC 8785 canonical JSON of the record's proto3 JSON form.
 */
export function createRecordsDigest(): RecordsDigest {
  const hash: Hash = createHash("sha256").update(Buffer.from(RECORDS_DIGEST_TAG, "latin1"));
  const length = Buffer.alloc(8);
  let count = 0n;
  return {
    add(recordJson) {
      const canonical = canonicalJson(recordJson as never);
      length.writeBigUInt64BE(BigInt(canonical.length));
      hash.update(length).update(canonical);
      count += 1n;
    },
    get count() {
      return count;
    },
    digest: () => new Uint8Array(hash.digest()),
  };
}
