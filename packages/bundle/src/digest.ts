import { createHash, type Hash } from "node:crypto";
import type { JsonValue } from "@bufbuild/protobuf";


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
      const canonical = Buffer.from(protoJsonCanonical(recordJson), "utf8");
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

/**
 * RFC 8785 canonical JSON of a value produced by the protobuf JSON codec. Written here rather
 * than taken from a JCS library because those scan every string for lone surrogates, which is
 * most of a bundle's digest time (payloads are long base64 strings), and a proto3 JSON value
 * cannot hold one: its strings are valid UTF-8, its numbers are integers or finite floats, its
 * objects are plain. For such values RFC 8785 is exactly: members sorted by UTF-16 code units,
 * strings and numbers as ECMAScript's JSON.stringify writes them, no whitespace.
 */
export function protoJsonCanonical(value: JsonValue): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(protoJsonCanonical).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${protoJsonCanonical((value as Record<string, JsonValue>)[key]!)}`).join(",")}}`;
}
