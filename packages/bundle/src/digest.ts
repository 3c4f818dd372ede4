import { createHash, type Hash } from "node:crypto";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { JsonValue } from "@bufbuild/protobuf";


/** The domain tag the records digest starts with, NUL included. */
export const RECORDS_DIGEST_TAG = "continuity.v1/bundle-records\u0000";

/**
 * One record's canonical JSON `c` in three pieces: `head`, then the standard padded base64 of
 * `bulk` (a delta's payload or a snapshot's state, the string value of one member), then
 * `tail`. So `c = head || base64(bulk) || tail`; with no bulk bytes, `c = head || tail`.
 */
export interface DigestPieces {
  readonly head: string;
  readonly bulk: Uint8Array;
  readonly tail: string;
}

/** An incremental records digest: feed each record in bundle order. */
export interface RecordsDigest {
  /** Adds the next record, given as its proto3 JSON. */
  add(recordJson: JsonValue): void;
  /** Adds the next record, given as the pieces of its canonical JSON. */
  addPieces(pieces: DigestPieces): void;
  /**
   * {@link addPieces} giving the event loop a turn after each megabyte of bulk bytes, for a
   * record of megabytes (a snapshot of a large state): its base64 and hash take a quarter of a
   * second or more in one go. Add nothing else until it settles.
   */
  addPiecesSliced(pieces: DigestPieces): Promise<void>;
  /** How many records were added. */
  readonly count: bigint;
  /** The digest over every record added; the digest cannot be extended afterwards. */
  digest(): Uint8Array;
}

/** Bulk bytes are base64-encoded this many at a time: a multiple of 3, so the slices' base64 joins up. */
const BASE64_SLICE = 3 * 16 * 1024;
/** Slices between two turns of the event loop in {@link RecordsDigest.addPiecesSliced}: about a megabyte. */
const SLICES_PER_TURN = 21;

const base64Length = (bytes: number): number => 4 * Math.ceil(bytes / 3);

/**
 * `SHA-256("continuity.v1/bundle-records" 0x00 || for each record: u64be(len(c)) || c)`, where
 * `c` is the RFC 8785 canonical JSON of the record's proto3 JSON form.
 */
export function createRecordsDigest(): RecordsDigest {
  const hash: Hash = createHash("sha256").update(Buffer.from(RECORDS_DIGEST_TAG, "latin1"));
  const length = Buffer.alloc(8);
  let count = 0n;
  // A generator so that the sliced variant runs the same steps, pausing where it yields.
  function* feed({ head, bulk, tail }: DigestPieces): Generator<void, void, undefined> {
    length.writeBigUInt64BE(BigInt(Buffer.byteLength(head, "utf8") + base64Length(bulk.length) + Buffer.byteLength(tail, "utf8")));
    hash.update(length).update(head, "utf8");
    const view = Buffer.from(bulk.buffer, bulk.byteOffset, bulk.byteLength);
    for (let at = 0; at < view.length; at += BASE64_SLICE) {
      hash.update(view.toString("base64", at, Math.min(view.length, at + BASE64_SLICE)), "latin1");
      if ((at / BASE64_SLICE) % SLICES_PER_TURN === SLICES_PER_TURN - 1) yield;
    }
    hash.update(tail, "utf8");
    count += 1n;
  }
  const addPieces = (pieces: DigestPieces): void => {
    const steps = feed(pieces);
    while (steps.next().done !== true);
  };
  return {
    add: (recordJson) => addPieces({ head: protoJsonCanonical(recordJson), bulk: NO_BYTES, tail: "" }),
    addPieces,
    async addPiecesSliced(pieces) {
      const steps = feed(pieces);
      while (steps.next().done !== true) await nextTurn();
    },
    get count() {
      return count;
    },
    digest: () => new Uint8Array(hash.digest()),
  };
}

const NO_BYTES = new Uint8Array(0);

/**
 * RFC 8785 canonical JSON of a value produced by the protobuf JSON codec. Written here rather
 * than taken from a JCS library because those scan every string for lone surrogates, which is
 * most of a bundle's digest time (payloads are long base64 strings), and a proto3 JSON value
 * cannot hold one: its strings are valid UTF-8, its numbers are integers or finite floats, its
 * objects are plain. For such values RFC 8785 is exactly: members sorted by UTF-16 code units,
 * strings and numbers as ECMAScript's JSON.stringify writes them, no whitespace.
 */
export function protoJsonCanonical(value: JsonValue): string {
  return write(value, undefined);
}

// Written where the bulk bytes' base64 goes. Every other character of the output passed
// through JSON.stringify, which escapes U+0001, so it occurs nowhere else.
const SPLIT = "\u0001";

function write(value: JsonValue, marker: object | undefined): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (value === marker) return `"${SPLIT}"`;
  if (Array.isArray(value)) return `[${value.map((item) => write(item, marker)).join(",")}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${write((value as Record<string, JsonValue>)[key]!, marker)}`).join(",")}}`;
}

/**
 * The digest pieces of a proto3 JSON value in which `bulk.marker` (an object, compared by
 * identity) stands for the string member holding the base64 of `bulk.bytes`.
 */
export function canonicalPieces(value: JsonValue, bulk: { readonly marker: object; readonly bytes: Uint8Array } | undefined): DigestPieces {
  const text = write(value, bulk?.marker);
  if (bulk === undefined) return { head: text, bulk: NO_BYTES, tail: "" };
  const at = text.indexOf(SPLIT);
  if (at < 0) throw new Error("the bulk marker is not in the value");
  return { head: text.slice(0, at), bulk: bulk.bytes, tail: text.slice(at + 1) };
}
