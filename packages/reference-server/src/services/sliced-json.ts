import { createHash } from "node:crypto";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { JsonObject, JsonValue } from "@continuity/sdk/protocol";

/**
 * The work on a whole JSON state that cannot be avoided (reading a stored state, writing the
 * canonical bytes of one, hashing them) done in slices of a few milliseconds, giving the
 * event loop back between slices, so that a state of tens of megabytes never holds up every
 * other call for the seconds a single `JSON.parse` or canonicalization of it takes.
 *
 * Everything here reads or writes canonical JSON that this server produced (stored states,
 * states it materialized), so it parses without the strict checks client bytes get.
 */

/** Longest stretch of work between two turns of the event loop. */
const SLICE_MS = 8;
/** Containers whose canonical text is at most this long are parsed by one `JSON.parse`. */
const PARSE_PIECE_BYTES = 128 * 1024;

const utf8 = new TextDecoder();

/** A deadline that, once passed, waits for the next turn of the event loop. */
function createPacer(): () => Promise<void> | undefined {
  let deadline = performance.now() + SLICE_MS;
  return () => {
    if (performance.now() < deadline) return undefined;
    return nextTurn().then(() => {
      deadline = performance.now() + SLICE_MS;
    });
  };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** The index just past the string that starts at `start` (a quote). */
function stringEnd(bytes: Uint8Array, start: number): number {
  let i = start + 1;
  for (;;) {
    const byte = bytes[i]!;
    if (byte === QUOTE) return i + 1;
    i += byte === BACKSLASH ? 2 : 1;
  }
}

/**
 * The index just past the value that starts at `start`, or -1 when it is a container longer
 * than `budget` bytes (which is then parsed piece by piece).
 */
function valueEnd(bytes: Uint8Array, start: number, budget: number): number {
  const first = bytes[start]!;
  if (first === QUOTE) return stringEnd(bytes, start);
  if (first !== OPEN_OBJECT && first !== OPEN_ARRAY) {
    let i = start;
    while (i < bytes.length && bytes[i] !== COMMA && bytes[i] !== CLOSE_ARRAY && bytes[i] !== CLOSE_OBJECT) i++;
    return i;
  }
  const limit = Math.min(bytes.length, start + budget);
  let depth = 0;
  for (let i = start; i < limit; ) {
    const byte = bytes[i]!;
    if (byte === QUOTE) {
      i = stringEnd(bytes, i);
      continue;
    }
    if (byte === OPEN_OBJECT || byte === OPEN_ARRAY) depth++;
    else if (byte === CLOSE_OBJECT || byte === CLOSE_ARRAY) {
      depth--;
      if (depth === 0) return i + 1;
    }
    i++;
  }
  return -1;
}

/** Parses canonical JSON bytes into the value they encode, in slices. */
export async function parseCanonicalSliced(bytes: Uint8Array): Promise<JsonValue> {
  const pace = createPacer();
  let at = 0;
  const parseSlice = (end: number): JsonValue => JSON.parse(utf8.decode(bytes.subarray(at, end))) as JsonValue;
  const parseValue = async (): Promise<JsonValue> => {
    const end = valueEnd(bytes, at, PARSE_PIECE_BYTES);
    if (end >= 0) {
      const value = parseSlice(end);
      at = end;
      return value;
    }
    const isObject = bytes[at] === OPEN_OBJECT;
    at++;
    if (isObject) {
      const object: JsonObject = {};
      while (bytes[at] !== CLOSE_OBJECT) {
        if (bytes[at] === COMMA) at++;
        const keyEnd = stringEnd(bytes, at);
        const key = parseSlice(keyEnd) as string;
        at = keyEnd;
        if (bytes[at] !== COLON) throw new Error(`stored state is not canonical JSON at byte ${at}`);
        at++;
        const value = await parseValue();
        Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
        await pace();
      }
      at++;
      return object;
    }
    const array: JsonValue[] = [];
    while (bytes[at] !== CLOSE_ARRAY) {
      if (bytes[at] === COMMA) at++;
      array.push(await parseValue());
      await pace();
    }
    at++;
    return array;
  };
  const value = await parseValue();
  if (at !== bytes.length) throw new Error(`stored state is not canonical JSON: ${bytes.length - at} bytes after the value`);
  return value;
}

type Frame = { readonly array: readonly JsonValue[]; index: number } | { readonly object: JsonObject; readonly keys: string[]; index: number };

/**
 * `canonicalJson(value)` (RFC 8785 as the `canonicalize` package writes it: members sorted by
 * UTF-16 code units, `JSON.stringify` for names, strings and numbers), built in slices. The
 * value must not change until the promise settles.
 */
export async function canonicalJsonSliced(value: JsonValue): Promise<Uint8Array> {
  const pace = createPacer();
  const chunks: Buffer[] = [];
  let text = "";
  const write = (piece: string): void => {
    text += piece;
    if (text.length >= 65_536) {
      chunks.push(Buffer.from(text, "utf8"));
      text = "";
    }
  };
  const stack: Frame[] = [];
  const open = (node: JsonValue): void => {
    if (node === null || typeof node !== "object") write(JSON.stringify(node));
    else if (Array.isArray(node)) {
      write("[");
      stack.push({ array: node, index: 0 });
    } else {
      write("{");
      stack.push({ object: node, keys: Object.keys(node).sort(), index: 0 });
    }
  };
  open(value);
  let steps = 0;
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if ("array" in frame) {
      if (frame.index === frame.array.length) {
        write("]");
        stack.pop();
      } else {
        if (frame.index > 0) write(",");
        open(frame.array[frame.index++]!);
      }
    } else if (frame.index === frame.keys.length) {
      write("}");
      stack.pop();
    } else {
      const key = frame.keys[frame.index]!;
      if (frame.index > 0) write(",");
      frame.index++;
      write(JSON.stringify(key));
      write(":");
      open(frame.object[key]!);
    }
    if (++steps % 512 === 0) await pace();
  }
  chunks.push(Buffer.from(text, "utf8"));
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** SHA-256 of `parts` in order, fed to the hash a megabyte per slice. */
export async function sha256Sliced(parts: readonly Uint8Array[]): Promise<Uint8Array> {
  const pace = createPacer();
  const hash = createHash("sha256");
  const step = 1 << 20;
  for (const part of parts) {
    for (let offset = 0; offset < part.length; offset += step) {
      hash.update(part.subarray(offset, offset + step));
      await pace();
    }
  }
  return new Uint8Array(hash.digest());
}
