/**
 * The canonical proto3 JSON of a delta record, read straight from a part's protobuf bytes.
 *
 * Hand-written, beside the descriptor-driven codec in `proto-json.ts`, because nearly every
 * record of a bundle is a delta and the codec's two passes over each one (decode into an
 * object, then walk it to write JSON) were most of an export's CPU. It covers only the
 * plain case, which is how every protobuf library writes a delta: the part holds one record,
 * the record one delta, each field of the delta at most once with its declared wire type, no
 * unknown fields, known enum values, valid UTF-8 and timestamps in range. For anything else
 * it answers `undefined` and the caller takes the codec's path, so the digest of an unusual
 * but valid encoding is still what the spec defines. Tests hold it equal to the codec.
 */
import type { DigestPieces } from "./digest.js";

// Wire types.
const VARINT = 0;
const LEN = 2;

// Field numbers: ExportSubjectResponse.record (= ImportBundleRequest.record =
// TransferSubjectResponse.record) = 2, BundleRecord.delta = 3.
const PART_RECORD = 2;
const RECORD_DELTA = 3;

/** continuity.v1.DeltaEncoding names by number; 0 is the default and never written. */
const ENCODING_NAMES: readonly string[] = ["DELTA_ENCODING_UNSPECIFIED", "DELTA_ENCODING_JSON_PATCH", "DELTA_ENCODING_JSON_MERGE_PATCH", "DELTA_ENCODING_OPAQUE"];

/** Delta fields by number: JSON name and kind. The JSON names in sorted order are the output order. */
const FIELDS: Readonly<Record<number, { readonly name: string; readonly kind: "string" | "bytes" | "uint64" | "uint32" | "enum" | "timestamp" }>> = {
  1: { name: "stream", kind: "string" },
  2: { name: "streamUid", kind: "string" },
  3: { name: "version", kind: "uint64" },
  4: { name: "encoding", kind: "enum" },
  5: { name: "payload", kind: "bytes" },
  6: { name: "prevHash", kind: "bytes" },
  7: { name: "hash", kind: "bytes" },
  8: { name: "device", kind: "string" },
  9: { name: "clientSequence", kind: "uint64" },
  10: { name: "batchFirstVersion", kind: "uint64" },
  11: { name: "batchSize", kind: "uint32" },
  12: { name: "commitTime", kind: "timestamp" },
};
const PAYLOAD_FIELD = 5;
const SORTED_FIELDS = Object.entries(FIELDS)
  .map(([number, field]) => ({ number: Number(number), ...field }))
  .sort((a, b) => (a.name < b.name ? -1 : 1));

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Thrown inside the reader for any case it leaves to the codec. */
class NotPlain extends Error {}

class Reader {
  pos: number;
  constructor(
    readonly buf: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** A varint as a bigint when it does not fit 53 bits, else as a number. */
  varint(): number | bigint {
    let low = 0;
    let shift = 0;
    for (let i = 0; i < 7; i++) {
      if (this.pos >= this.end) throw new NotPlain();
      const byte = this.buf[this.pos++]!;
      low += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (byte < 0x80) return low;
    }
    // Past 49 bits: finish in bigint (a uint64 takes at most 10 bytes).
    let value = BigInt(low);
    for (let i = 7; i < 10; i++) {
      if (this.pos >= this.end) throw new NotPlain();
      const byte = this.buf[this.pos++]!;
      value += BigInt(byte & 0x7f) << BigInt(shift);
      shift += 7;
      if (byte < 0x80) {
        if (value >= 1n << 64n) throw new NotPlain();
        return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
      }
    }
    throw new NotPlain();
  }

  /** A length-delimited field's extent. */
  span(): { start: number; end: number } {
    const length = this.varint();
    if (typeof length !== "number" || length > this.end - this.pos) throw new NotPlain();
    const start = this.pos;
    this.pos += length;
    return { start, end: this.pos };
  }

  /** The one field that must fill the rest: `number` with wire type LEN. */
  only(number: number): { start: number; end: number } {
    const tag = this.varint();
    if (tag !== number * 8 + LEN) throw new NotPlain();
    const span = this.span();
    if (this.pos !== this.end) throw new NotPlain();
    return span;
  }
}

/** RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as proto3 JSON writes a Timestamp. */
function timestamp(reader: Reader, start: number, end: number): string {
  const r = new Reader(reader.buf, start, end);
  let seconds: number | bigint = 0;
  let nanos = 0;
  const seen = new Set<number>();
  while (r.pos < r.end) {
    const tag = r.varint();
    if (typeof tag !== "number" || seen.has(tag)) throw new NotPlain();
    seen.add(tag);
    if (tag === 1 * 8 + VARINT) seconds = r.varint();
    else if (tag === 2 * 8 + VARINT) {
      const value = r.varint();
      if (typeof value !== "number" || value > 999_999_999) throw new NotPlain();
      nanos = value;
    } else throw new NotPlain();
  }
  // Negative seconds arrive as 10-byte two's complement; leave them, and years past 9999, to the codec.
  if (typeof seconds !== "number" || seconds > 253_402_300_799) throw new NotPlain();
  const whole = new Date(seconds * 1000).toISOString().slice(0, 19);
  if (nanos === 0) return `${whole}Z`;
  const digits = String(nanos).padStart(9, "0");
  const fraction = nanos % 1_000_000 === 0 ? digits.slice(0, 3) : nanos % 1000 === 0 ? digits.slice(0, 6) : digits;
  return `${whole}.${fraction}Z`;
}

/**
 * The digest pieces of a part that holds one plainly encoded delta record; undefined for any
 * other part (the codec's path then decides).
 */
export function deltaRecordPieces(part: Uint8Array): DigestPieces | undefined {
  try {
    const outer = new Reader(part, 0, part.length).only(PART_RECORD);
    const record = new Reader(part, outer.start, outer.end).only(RECORD_DELTA);
    const r = new Reader(part, record.start, record.end);
    const values = new Map<number, string>();
    let payload: Uint8Array | undefined;
    while (r.pos < r.end) {
      const tag = r.varint();
      if (typeof tag !== "number") throw new NotPlain();
      const number = Math.floor(tag / 8);
      const wireType = tag % 8;
      const field = FIELDS[number];
      if (field === undefined || values.has(number) || (number === PAYLOAD_FIELD && payload !== undefined)) throw new NotPlain();
      const wantLen = field.kind === "string" || field.kind === "bytes" || field.kind === "timestamp";
      if (wireType !== (wantLen ? LEN : VARINT)) throw new NotPlain();
      switch (field.kind) {
        case "string": {
          const { start, end } = r.span();
          if (end > start) values.set(number, JSON.stringify(utf8.decode(part.subarray(start, end))));
          else values.set(number, "");
          break;
        }
        case "bytes": {
          const { start, end } = r.span();
          if (number === PAYLOAD_FIELD) payload = part.subarray(start, end);
          else values.set(number, end > start ? `"${Buffer.from(part.buffer, part.byteOffset + start, end - start).toString("base64")}"` : "");
          break;
        }
        case "uint64": {
          const value = r.varint();
          values.set(number, value === 0 ? "" : `"${String(value)}"`);
          break;
        }
        case "uint32": {
          const value = r.varint();
          if (typeof value !== "number" || value > 0xffff_ffff) throw new NotPlain();
          values.set(number, value === 0 ? "" : String(value));
          break;
        }
        case "enum": {
          const value = r.varint();
          const name = typeof value === "number" ? ENCODING_NAMES[value] : undefined;
          if (name === undefined) throw new NotPlain();
          values.set(number, value === 0 ? "" : `"${name}"`);
          break;
        }
        case "timestamp": {
          const { start, end } = r.span();
          values.set(number, `"${timestamp(r, start, end)}"`);
          break;
        }
      }
    }
    // Members in sorted order, default values omitted; the payload's value is the bulk.
    let head = '{"delta":{';
    let tail = "";
    let first = true;
    let afterPayload = false;
    const bulk = payload ?? EMPTY;
    for (const field of SORTED_FIELDS) {
      if (field.number === PAYLOAD_FIELD) {
        if (bulk.length === 0) continue;
        head += `${first ? "" : ","}"payload":"`;
        tail += '"';
        first = false;
        afterPayload = true;
        continue;
      }
      const value = values.get(field.number);
      if (value === undefined || value === "") continue;
      const member = `${first ? "" : ","}"${field.name}":${value}`;
      first = false;
      if (afterPayload) tail += member;
      else head += member;
    }
    if (afterPayload) tail += "}}";
    else head += "}}";
    return { head, bulk, tail };
  } catch (error) {
    if (error instanceof NotPlain) return undefined;
    // Invalid UTF-8 (TextDecoder's TypeError) is left to the codec too.
    if (error instanceof TypeError) return undefined;
    throw error;
  }
}

const EMPTY = new Uint8Array(0);
