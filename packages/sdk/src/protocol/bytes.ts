/**
 * Byte-level building blocks of the hash preimages (spec: docs/spec/hashing.md, "Notation").
 * Everything here is deliberately tiny and dependency-free so that the preimage layout can be
 * read off the code line by line.
 */

const HEX_DIGITS = "0123456789abcdef";
const UINT32_MAX = 0xffff_ffff;
const UINT64_MAX = (1n << 64n) - 1n;
const utf8Encoder = new TextEncoder();

/**
 * Lowercase hex of `bytes`. Lowercase because hashes travel as hex in ErrorInfo metadata
 * (`headHash`) and in test vectors, where one spelling keeps comparisons byte-exact.
 */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) {
    out += HEX_DIGITS[byte >> 4]! + HEX_DIGITS[byte & 0x0f]!;
  }
  return out;
}

/**
 * Bytes of a hex string (either case, even length, no prefix or separators). Throws a
 * `RangeError` on anything else, so a corrupt hash never silently turns into other bytes.
 */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw new RangeError(`not an even-length hex string: ${JSON.stringify(hex.slice(0, 80))}`);
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  }
  return out;
}

/** True when both byte arrays hold the same bytes. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false;
  }
  return true;
}

/** Concatenation of byte arrays, in order. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** UTF-8 bytes of a string whose code points are all scalar values (no lone surrogates). */
export function utf8(text: string): Uint8Array {
  if (!isWellFormedUnicode(text)) {
    throw new TypeError("string contains a lone surrogate and has no UTF-8 form");
  }
  return utf8Encoder.encode(text);
}

const SURROGATE = /[\ud800-\udfff]/;

/**
 * True when every UTF-16 surrogate in `text` is part of a pair. A lone surrogate has no UTF-8
 * form, and RFC 8785 requires rejecting it rather than inventing bytes for it.
 */
export function isWellFormedUnicode(text: string): boolean {
  // Most text has no surrogate at all: one native scan says so (a loop over every code unit
  // cost a 60 MiB JSON state a third of a second). `String.prototype.isWellFormed` would do the
  // whole check natively, but browsers before 2023 lack it.
  if (!SURROGATE.test(text)) return true;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      i++;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return false;
    }
  }
  return true;
}

/** `u8(n)`: one byte. */
export function u8(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xff) {
    throw new RangeError(`not a u8: ${value}`);
  }
  return Uint8Array.of(value);
}

/** `u32be(n)`: four bytes, big-endian. */
export function u32be(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > UINT32_MAX) {
    throw new RangeError(`not a u32: ${value}`);
  }
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value, false);
  return out;
}

/**
 * `u64be(n)`: eight bytes, big-endian. Accepts `number` for convenience but only when it is a
 * safe integer, because versions are uint64 on the wire (bigint in the generated code).
 */
export function u64be(value: bigint | number): Uint8Array {
  const big = toUint64(value);
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, big, false);
  return out;
}

/** Validates and converts a uint64 given as bigint or safe integer. */
export function toUint64(value: bigint | number): bigint {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`not a uint64 safe integer: ${value}`);
    }
    return BigInt(value);
  }
  if (value < 0n || value > UINT64_MAX) {
    throw new RangeError(`not a uint64: ${value}`);
  }
  return value;
}

/** `lp(s)`: u32be(byte length of the UTF-8 form) followed by those bytes. */
export function lp(text: string): Uint8Array {
  const bytes = utf8(text);
  return concatBytes([u32be(bytes.length), bytes]);
}

/** A domain tag: the ASCII tag followed by one 0x00 byte, so no tag is a prefix of another's preimage. */
export function domainTag(tag: string): Uint8Array {
  return concatBytes([utf8(tag), Uint8Array.of(0)]);
}
