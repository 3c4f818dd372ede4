import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { create, createFileRegistry, fromBinary, toBinary, toJson, type JsonValue } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { canonicalJson } from "@continuity/sdk/protocol";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deltaRecordPieces } from "./delta-json.js";
import { createRecordsDigest, RECORDS_DIGEST_TAG, type DigestPieces } from "./digest.js";
import { recordDigestPieces } from "./proto-json.js";

// The records digest is defined over each record's RFC 8785 canonical proto3 JSON. These
// tests hold the fast pieces (delta-json.ts, and the codec path with its bulk bytes apart)
// to that definition as computed the slow, obvious way: the descriptor codec's toJson, then
// the SDK's canonical JSON, hashed as one string.

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(new URL("./continuity-v1.binpb", import.meta.url))));
const PART = registry.getMessage("continuity.v1.ExportSubjectResponse")!;
const RECORD = registry.getMessage("continuity.v1.BundleRecord")!;
const DELTA = registry.getMessage("continuity.v1.Delta")!;

/** What the spec says `c` is for the record in `part`. */
function referenceCanonical(part: Uint8Array): string {
  const generic = fromBinary(PART, part) as unknown as { part: { case: string; value: never } };
  return Buffer.from(canonicalJson(toJson(RECORD, generic.part.value) as never)).toString("utf8");
}

const joined = (p: DigestPieces): string => p.head + Buffer.from(p.bulk).toString("base64") + p.tail;

function deltaPart(delta: Record<string, unknown>): Uint8Array {
  return toBinary(PART, create(PART, { part: { case: "record", value: { record: { case: "delta", value: create(DELTA, delta as never) } } } } as never));
}

/** Wraps raw Delta message bytes in a record part, by hand. */
function wrapDelta(deltaBytes: Uint8Array): Uint8Array {
  const record = new BinaryWriter().tag(3, WireType.LengthDelimited).bytes(deltaBytes).finish();
  return new BinaryWriter().tag(2, WireType.LengthDelimited).bytes(record).finish();
}

const uint64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 53n }));
const text = fc.oneof(fc.string(), fc.string({ unit: "grapheme" }), fc.constantFrom("", "\uFEFFbom", "é\u2028\"\\\u0001", "subjects/s/streams/x"));
const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const timestamp = fc.record({
  seconds: fc.oneof(fc.bigInt({ min: 0n, max: 253_402_300_799n }), fc.constant(0n), fc.constant(1_700_000_000n)),
  nanos: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999_999_999 }), fc.integer({ min: 0, max: 999 }).map((n) => n * 1_000_000), fc.integer({ min: 0, max: 999_999 }).map((n) => n * 1000)),
});
const delta = fc.record(
  {
    stream: text,
    streamUid: text,
    version: uint64,
    encoding: fc.integer({ min: 0, max: 3 }),
    payload: fc.oneof(bytes(100), bytes(70_000)),
    prevHash: bytes(40),
    hash: bytes(40),
    device: text,
    clientSequence: uint64,
    batchFirstVersion: uint64,
    batchSize: fc.integer({ min: 0, max: 0xffff_ffff }),
    commitTime: timestamp,
  },
  { requiredKeys: [] },
);

describe("delta records' canonical JSON read straight from the bytes", () => {
  it("equals the descriptor codec's JSON, canonicalized, for any plainly encoded delta", () => {
    fc.assert(
      fc.property(delta, (d) => {
        const part = deltaPart(d);
        const fast = deltaRecordPieces(part);
        expect(fast).toBeDefined();
        expect(joined(fast!)).toBe(referenceCanonical(part));
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
  });

  it("omits fields written on the wire with their default value, as proto3 JSON does", () => {
    const zeros = new BinaryWriter()
      .tag(1, WireType.LengthDelimited).string("")
      .tag(3, WireType.Varint).uint64(0n)
      .tag(4, WireType.Varint).int32(0)
      .tag(5, WireType.LengthDelimited).bytes(new Uint8Array(0))
      .tag(7, WireType.LengthDelimited).bytes(new Uint8Array(0))
      .tag(11, WireType.Varint).uint32(0)
      .tag(2, WireType.LengthDelimited).string("uid")
      .tag(12, WireType.LengthDelimited).bytes(new Uint8Array(0))
      .finish();
    const part = wrapDelta(zeros);
    const fast = deltaRecordPieces(part);
    expect(fast).toBeDefined();
    expect(joined(fast!)).toBe(referenceCanonical(part));
    expect(joined(fast!)).toBe('{"delta":{"commitTime":"1970-01-01T00:00:00Z","streamUid":"uid"}}');
  });

  it("leaves every unusual encoding to the codec, which still gives the defined JSON", () => {
    const plain = toBinary(DELTA, create(DELTA, { streamUid: "u", version: 7n, payload: new Uint8Array([1, 2, 3]), encoding: 3, commitTime: { seconds: 5n, nanos: 0 } } as never));
    const unusual: [string, Uint8Array][] = [
      ["a field twice (the last wins)", Buffer.concat([plain, new BinaryWriter().tag(3, WireType.Varint).uint64(9n).finish()])],
      ["the payload in two occurrences", Buffer.concat([plain, new BinaryWriter().tag(5, WireType.LengthDelimited).bytes(new Uint8Array([9])).finish()])],
      ["an unknown field (dropped from JSON)", Buffer.concat([plain, new BinaryWriter().tag(99, WireType.Varint).uint32(1).finish()])],
      ["an enum value this version does not know", Buffer.concat([toBinary(DELTA, create(DELTA, { streamUid: "u" } as never)), new BinaryWriter().tag(4, WireType.Varint).int32(17).finish()])],
      ["a timestamp before 1970", toBinary(DELTA, create(DELTA, { streamUid: "u", commitTime: { seconds: -5n, nanos: 1 } } as never))],
    ];
    for (const [what, deltaBytes] of unusual) {
      const part = wrapDelta(deltaBytes);
      expect(deltaRecordPieces(part), what).toBeUndefined();
      expect(joined(recordDigestPieces(part)!), what).toBe(referenceCanonical(part));
    }
  });

  it("answers nothing for parts that are not delta records", () => {
    const device = toBinary(PART, create(PART, { part: { case: "record", value: { record: { case: "device", value: { name: "subjects/s/devices/d" } } } } } as never));
    expect(deltaRecordPieces(device)).toBeUndefined();
    expect(joined(recordDigestPieces(device)!)).toBe(referenceCanonical(device));
    const trailer = toBinary(PART, create(PART, { part: { case: "trailer", value: { recordCount: 1n } } } as never));
    expect(recordDigestPieces(trailer)).toBeUndefined();
  });

  it("puts a snapshot's state apart as the bulk bytes, whatever its size", () => {
    const state = Buffer.alloc(200_001, 0xab);
    const part = toBinary(PART, create(PART, { part: { case: "record", value: { record: { case: "snapshot", value: { header: { streamUid: "u", version: 2n }, state } } } } } as never));
    const pieces = recordDigestPieces(part)!;
    expect(pieces.bulk.length).toBe(state.length);
    expect(joined(pieces)).toBe(referenceCanonical(part));
  });
});

describe("records digest over pieces", () => {
  it("hashes u64be(len(c)) || c with c whole, for bulk bytes longer than one base64 slice", () => {
    const records: DigestPieces[] = [
      { head: '{"delta":{"payload":"', bulk: Buffer.alloc(150_001, 7), tail: '","version":"1"}}' },
      { head: '{"device":{"name":"é"}}', bulk: new Uint8Array(0), tail: "" },
      { head: '{"delta":{"payload":"', bulk: new Uint8Array([1]), tail: '"}}' },
    ];
    const digest = createRecordsDigest();
    for (const r of records) digest.addPieces(r);
    const expected = createHash("sha256").update(RECORDS_DIGEST_TAG, "latin1");
    for (const r of records) {
      const c = Buffer.from(joined(r), "utf8");
      const length = Buffer.alloc(8);
      length.writeBigUInt64BE(BigInt(c.length));
      expected.update(length).update(c);
    }
    expect(Buffer.from(digest.digest()).toString("hex")).toBe(expected.digest("hex"));
    expect(digest.count).toBe(3n);
  });

  it("gives the same digest for a record added as JSON and as its pieces", () => {
    const part = deltaPart({ streamUid: "u", version: 3n, payload: new Uint8Array([0, 255, 9]), commitTime: { seconds: 1n, nanos: 500 } });
    const json = JSON.parse(referenceCanonical(part)) as JsonValue;
    const a = createRecordsDigest();
    a.add(json);
    const b = createRecordsDigest();
    b.addPieces(recordDigestPieces(part)!);
    expect(Buffer.from(a.digest()).toString("hex")).toBe(Buffer.from(b.digest()).toString("hex"));
  });
});
