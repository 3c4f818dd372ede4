import { createHash } from "node:crypto";
import { setImmediate as nextTurn } from "node:timers/promises";
import {
  bytesEqual,
  canonicalJson,
  DiffNotExpressibleError,
  countOf,
  indexedMemberNames,
  memberNames,
  parseJsonDocument,
  recordMemberNames,
  RESERVED_MEMBER_NAME,
  WIDE_OBJECT_MEMBERS,
  type JsonObject,
  type JsonValue,
} from "@continuity/sdk/protocol";

/**
 * The work on a whole JSON state that cannot be avoided (reading a stored state, writing the
 * canonical bytes of one, hashing them) done in slices of a few milliseconds, giving the
 * event loop back between slices, so that a state of tens of megabytes never holds up every
 * other call for the seconds a single `JSON.parse` or canonicalization of it takes.
 *
 * Everything here reads or writes canonical JSON that this server produced (stored states,
 * states it materialized), so it parses without the strict checks client bytes get.
 *
 * Written here rather than taken from a library because none slices its work: the SDK's
 * `canonicalJson` (the `canonicalize` package), `jsonEquals`, `diffJsonStates` (fast-json-patch,
 * json-merge-patch) and `Array.prototype.sort` each finish in one step, which for a state near
 * `max_snapshot_bytes` is seconds. The results are the same as theirs (the tests compare them).
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

/** The index just past the string that starts at `start` (a quote), or -1 when it does not end. */
function stringEnd(bytes: Uint8Array, start: number): number {
  for (let i = start + 1; i < bytes.length; ) {
    const byte = bytes[i]!;
    if (byte === QUOTE) return i + 1;
    i += byte === BACKSLASH ? 2 : 1;
  }
  return -1;
}

/**
 * Where the value at `start` ends, or -1 when it is a container longer than `budget` bytes
 * (then parsed or checked piece by piece) or, in untrusted bytes, does not end at all (a
 * problem the piece-by-piece check names). One scanner for stored and for client bytes.
 */
function valueEnd(bytes: Uint8Array, start: number, budget: number): number {
  const first = bytes[start];
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
      const end = stringEnd(bytes, i);
      if (end < 0) return -1;
      i = end;
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

/**
 * Parses canonical JSON bytes into the value they encode, in slices. A container of at most
 * {@link PARSE_PIECE_BYTES} bytes is one `JSON.parse`; a larger one is read as runs of its
 * members (or items) that together fit in that budget and number at most
 * `WIDE_OBJECT_MEMBERS` (a run's names are listed at once), each run one `JSON.parse` of the
 * run wrapped in braces (or brackets), whose members are then moved into the container. Per
 * member, only the byte scan that finds where it ends is done here: parsing each name and each
 * value on its own cost a million-member object a second more than its bytes do.
 */
export async function parseCanonicalSliced(bytes: Uint8Array): Promise<JsonValue> {
  const pace = createPacer();
  let at = 0;
  const notCanonical = (): Error => new Error(`stored state is not canonical JSON at byte ${at}`);
  const parseText = (text: string): JsonValue => JSON.parse(text) as JsonValue;
  const parseValue = async (): Promise<JsonValue> => {
    const end = valueEnd(bytes, at, PARSE_PIECE_BYTES);
    if (end >= 0) {
      const value = parseText(utf8.decode(bytes.subarray(at, end)));
      at = end;
      return value;
    }
    const isObject = bytes[at] === OPEN_OBJECT;
    if (!isObject && bytes[at] !== OPEN_ARRAY) throw notCanonical();
    const close = isObject ? CLOSE_OBJECT : CLOSE_ARRAY;
    at++;
    const object: JsonObject = {};
    const array: JsonValue[] = [];
    // An object's names as they are read: listing them afterwards would be one step the object's width.
    const names = new Set<string>();
    /** Moves the members (or items) of one parsed run into the container. */
    const take = (run: JsonValue): void => {
      if (!isObject) {
        for (const item of run as JsonValue[]) array.push(item);
        return;
      }
      // The run has at most a piece's worth of members: listing them is a short step.
      for (const key of Object.keys(run as JsonObject)) {
        Object.defineProperty(object, key, { value: (run as JsonObject)[key], writable: true, enumerable: true, configurable: true });
        names.add(key);
      }
    };
    while (bytes[at] !== close) {
      if (bytes[at] === COMMA) at++;
      // A run: whole members (items) from here while they fit in one piece.
      const runStart = at;
      let runEnd = at;
      for (let next = at, members = 0; next < bytes.length && members < WIDE_OBJECT_MEMBERS; members++) {
        let valueAt = next;
        if (isObject) {
          const keyEnd = stringEnd(bytes, next);
          if (keyEnd < 0 || bytes[keyEnd] !== COLON) throw notCanonical();
          valueAt = keyEnd + 1;
        }
        const budget = PARSE_PIECE_BYTES - (valueAt - runStart);
        const memberEnd = budget > 0 ? valueEnd(bytes, valueAt, budget) : -1;
        if (memberEnd < 0 || memberEnd - runStart > PARSE_PIECE_BYTES) break;
        runEnd = memberEnd;
        if (bytes[memberEnd] !== COMMA) break;
        next = memberEnd + 1;
      }
      if (runEnd > runStart) {
        const text = utf8.decode(bytes.subarray(runStart, runEnd));
        take(parseText(isObject ? `{${text}}` : `[${text}]`));
        at = runEnd;
      } else {
        // A member (item) too large for a piece alone: its value is read in slices.
        let key: string | undefined;
        if (isObject) {
          const keyEnd = stringEnd(bytes, at);
          key = parseText(utf8.decode(bytes.subarray(at, keyEnd))) as string;
          at = keyEnd + 1;
        }
        const value = await parseValue();
        if (key === undefined) array.push(value);
        else {
          Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
          names.add(key);
        }
      }
      if (bytes[at] !== COMMA && bytes[at] !== close) throw notCanonical();
      await pace();
    }
    at++;
    if (!isObject) return array;
    if (names.size > WIDE_OBJECT_MEMBERS) recordMemberNames(object, names);
    return object;
  };
  const value = await parseValue();
  if (at !== bytes.length) throw new Error(`stored state is not canonical JSON: ${bytes.length - at} bytes after the value`);
  return value;
}

/** Why client bytes are not a JSON state: not a JSON document at all, or not in canonical form. */
export interface StateProblem {
  readonly kind: "invalid" | "not-canonical";
  readonly message: string;
}

function depthOf(value: JsonValue): number {
  if (value === null || typeof value !== "object") return 0;
  let deepest = 0;
  for (const child of Array.isArray(value) ? value : Object.values(value)) deepest = Math.max(deepest, depthOf(child));
  return deepest + 1;
}

/**
 * Whether client bytes (an imported snapshot's state) are a JSON document as strict as
 * `parseJsonDocument` asks (PATCH-*, HASH-024, HASH-025) and in canonical form (RFC 8785), as
 * `bytesEqual(canonicalJson(parseJsonDocument(bytes)), bytes)` says, checked in slices: each
 * container of at most {@link PARSE_PIECE_BYTES} bytes, scalar and member name by those two
 * functions of the SDK, and the larger containers around them here, byte by byte (canonical
 * JSON has no whitespace, its members are sorted by UTF-16 code units, each name once). Only a
 * single string longer than that is still checked in one step. Nothing is built: the bytes are
 * stored as they are.
 */
export async function checkCanonicalStateSliced(bytes: Uint8Array, maxDepth: number): Promise<StateProblem | undefined> {
  const pace = createPacer();
  const invalid = (message: string): StateProblem => ({ kind: "invalid", message });
  // Canonical JSON has no whitespace and nothing but the structure here between its pieces:
  // any other byte there is not canonical, whether or not the document is JSON at all.
  const notCanonical = (message: string): StateProblem => ({ kind: "not-canonical", message });
  let at = 0;
  const piece = (end: number, depth: number): StateProblem | undefined => {
    const slice = bytes.subarray(at, end);
    let value: JsonValue;
    try {
      value = parseJsonDocument(slice);
    } catch (error) {
      return invalid(`at byte ${at}: ${(error as Error).message}`);
    }
    if (depth + depthOf(value) > maxDepth) return invalid(`nesting deeper than ${maxDepth} levels`);
    at = end;
    return bytesEqual(canonicalJson(value), slice) ? undefined : notCanonical(`the value ending at byte ${end} is not in canonical form`);
  };
  const check = async (depth: number): Promise<StateProblem | undefined> => {
    const end = valueEnd(bytes, at, PARSE_PIECE_BYTES);
    if (end >= 0) return piece(end, depth);
    const isObject = bytes[at] === OPEN_OBJECT;
    if (!isObject && bytes[at] !== OPEN_ARRAY) return invalid(`a string that does not end, at byte ${at}`);
    // valueEnd found no end within its budget: a container longer than it, or one that never ends.
    if (depth + 1 > maxDepth) return invalid(`nesting deeper than ${maxDepth} levels`);
    const close = isObject ? CLOSE_OBJECT : CLOSE_ARRAY;
    let previous: string | undefined;
    at++;
    for (;;) {
      if (isObject) {
        if (bytes[at] !== QUOTE) return notCanonical(`a member name expected at byte ${at}`);
        const nameEnd = stringEnd(bytes, at);
        if (nameEnd < 0) return invalid(`a member name that does not end, at byte ${at}`);
        const nameAt = at;
        const problem = piece(nameEnd, depth);
        if (problem !== undefined) return problem;
        const name = JSON.parse(utf8.decode(bytes.subarray(nameAt, nameEnd))) as string;
        if (name === RESERVED_MEMBER_NAME) return invalid(`the member name ${RESERVED_MEMBER_NAME} is reserved (HASH-025)`);
        if (previous !== undefined && !(previous < name)) {
          return previous === name ? invalid(`duplicate member name ${JSON.stringify(name)}`) : notCanonical(`member ${JSON.stringify(name)} is not in sorted order`);
        }
        previous = name;
        if (bytes[at] !== COLON) return notCanonical(`a colon expected at byte ${at}`);
        at++;
      }
      if (at >= bytes.length) return invalid("the document ends inside a container");
      const problem = await check(depth + 1);
      if (problem !== undefined) return problem;
      await pace();
      if (bytes[at] === close) {
        at++;
        return undefined;
      }
      if (bytes[at] !== COMMA) return notCanonical(`a comma or the container's end expected at byte ${at}`);
      at++;
    }
  };
  if (bytes.length === 0) return invalid("the state is empty");
  const problem = await check(0);
  if (problem !== undefined) return problem;
  return at === bytes.length ? undefined : notCanonical(`${bytes.length - at} bytes after the value`);
}

type Frame = { readonly array: readonly JsonValue[]; index: number } | { readonly object: JsonObject; readonly keys: string[]; index: number };

/**
 * `canonicalJson(value)` (RFC 8785 as the `canonicalize` package writes it: members sorted by
 * UTF-16 code units, `JSON.stringify` for names, strings and numbers), built in slices. The
 * value must not change until the promise settles. Member names come from an object's name
 * index when it has one (member-names.ts) unless `names` is "listed", which takes
 * `Object.keys` of every object: the fallback for a caller whose size check doubts the index.
 */
export async function canonicalJsonSliced(value: JsonValue, names: "indexed" | "listed" = "indexed"): Promise<Uint8Array> {
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
  // Returns a promise only for an object whose member names are sorted in slices.
  const open = (node: JsonValue): Promise<void> | undefined => {
    if (node === null || typeof node !== "object") write(JSON.stringify(node));
    else if (Array.isArray(node)) {
      write("[");
      stack.push({ array: node, index: 0 });
    } else {
      write("{");
      const indexed = names === "indexed" ? indexedMemberNames(node) : undefined;
      if (indexed !== undefined) {
        return listNamesSliced(indexed, pace)
          .then((keys) => sortKeysSliced(keys, pace))
          .then((sorted) => void stack.push({ object: node, keys: sorted, index: 0 }));
      }
      const keys = Object.keys(node);
      if (keys.length > SORT_RUN) return sortKeysSliced(keys, pace).then((sorted) => void stack.push({ object: node, keys: sorted, index: 0 }));
      stack.push({ object: node, keys: keys.sort(), index: 0 });
    }
    return undefined;
  };
  await open(value);
  let steps = 0;
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    if ("array" in frame) {
      if (frame.index === frame.array.length) {
        write("]");
        stack.pop();
      } else {
        if (frame.index > 0) write(",");
        const opening = open(frame.array[frame.index++]!);
        if (opening !== undefined) await opening;
      }
    } else if (frame.index === frame.keys.length) {
      write("}");
      stack.pop();
    } else {
      const key = frame.keys[frame.index]!;
      // Names from an index (member-names.ts) that were not the object's own would write a
      // wrong state: refuse rather than serve it.
      if (!Object.hasOwn(frame.object, key)) throw new Error(`member name ${JSON.stringify(key)} is not the object's own`);
      if (frame.index > 0) write(",");
      frame.index++;
      write(JSON.stringify(key));
      write(":");
      const opening = open(frame.object[key]!);
      if (opening !== undefined) await opening;
    }
    if (++steps % 512 === 0) await pace();
  }
  chunks.push(Buffer.from(text, "utf8"));
  return chunks.length === 1 ? chunks[0]! : concatSliced(chunks, pace);
}

/** `Buffer.concat(chunks)`, copied a megabyte per slice: one copy of 60 MiB takes a tenth of a second or more. */
async function concatSliced(chunks: readonly Uint8Array[], pace: () => Promise<void> | undefined): Promise<Uint8Array> {
  const out = Buffer.allocUnsafe(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let at = 0;
  let sinceTurn = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
    sinceTurn += chunk.length;
    if (sinceTurn >= 1 << 20) {
      sinceTurn = 0;
      await pace();
    }
  }
  return out;
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

/** The names of a member name index as an array, copied a few thousand per slice. */
async function listNamesSliced(names: ReadonlySet<string>, pace: () => Promise<void> | undefined): Promise<string[]> {
  const keys: string[] = [];
  for (const name of names) {
    keys.push(name);
    if ((keys.length & 4095) === 0) await pace();
  }
  return keys;
}

/** Member names sorted by one native `sort` at most: a few milliseconds. */
const SORT_RUN = 4096;

/**
 * `keys.sort()` (UTF-16 code unit order, as RFC 8785 sorts members) of an object with very
 * many members, in slices: runs of {@link SORT_RUN} sorted natively, then merged pairwise, with
 * the pacer consulted between runs and every few thousand merged names.
 */
export async function sortKeysSliced(keys: string[], pace: () => Promise<void> | undefined = createPacer()): Promise<string[]> {
  const n = keys.length;
  let from = keys;
  for (let start = 0; start < n; start += SORT_RUN) {
    const run = from.slice(start, start + SORT_RUN).sort();
    for (let i = 0; i < run.length; i++) from[start + i] = run[i]!;
    await pace();
  }
  let to: string[] = new Array<string>(n);
  for (let width = SORT_RUN; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      for (let k = lo; k < hi; k++) {
        to[k] = j >= hi || (i < mid && from[i]! <= from[j]!) ? from[i++]! : from[j++]!;
        if ((k & 4095) === 4095) await pace();
      }
    }
    [from, to] = [to, from];
  }
  return from;
}

type Pace = () => Promise<void> | undefined;

/** A pacer consulted every few hundred steps: reading the clock each step would cost more than the step. */
function createStepper(): () => Promise<void> | undefined {
  const pace = createPacer();
  let steps = 0;
  return () => ((++steps & 255) === 0 ? pace() : undefined);
}

const isObject = (value: JsonValue | undefined): value is JsonObject => typeof value === "object" && value !== null && !Array.isArray(value);

/** `jsonEquals(a, b)` of the SDK (RFC 6902 `test` equality), in slices. */
export async function jsonEqualsSliced(a: JsonValue, b: JsonValue, step: Pace = createStepper()): Promise<boolean> {
  const pairs: [JsonValue, JsonValue][] = [[a, b]];
  while (pairs.length > 0) {
    const [x, y] = pairs.pop()!;
    const waiting = step();
    if (waiting !== undefined) await waiting;
    if (x === y) continue;
    if (typeof x !== "object" || typeof y !== "object" || x === null || y === null) return false;
    if (Array.isArray(x) || Array.isArray(y)) {
      if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) pairs.push([x[i]!, y[i]!]);
      continue;
    }
    const names = memberNames(x);
    if (countOf(names) !== countOf(memberNames(y))) return false;
    for (const key of names) {
      if (!Object.hasOwn(y, key)) return false;
      pairs.push([x[key]!, y[key]!]);
      const waiting = step();
      if (waiting !== undefined) await waiting;
    }
  }
  return true;
}

const pointerToken = (key: string) => key.replaceAll("~", "~0").replaceAll("/", "~1");

/**
 * A patch of `encoding` that turns `from` into `to`, or undefined when they are equal: the diff
 * a restore appends (RESTORE-*), in slices. Applying it to `from` gives `to`, as the SDK's
 * `diffJsonStates` guarantees; its values are `to`'s own (the caller owns `to` and changes
 * neither it nor the patch afterwards).
 *
 * JSON Patch: `replace` of the root when the roots are not both objects or both arrays;
 * otherwise, member by member, `remove` and `add` of members one side lacks, and for arrays
 * index by index over the common length, then `remove` of the extra items from the last or
 * `add` of the new ones. JSON Merge Patch (RFC 7396): `null` for removed members, nested
 * patches for objects, values whole otherwise; throws `DiffNotExpressibleError` when `to`
 * holds a `null` member where a merge patch would have to set one.
 */
export async function diffJsonStatesSliced(from: JsonValue, to: JsonValue, encoding: "json-patch" | "json-merge-patch"): Promise<JsonValue | undefined> {
  const step = createStepper();
  return encoding === "json-patch" ? diffPatch(from, to, step) : diffMerge(from, to, step);
}

async function diffPatch(from: JsonValue, to: JsonValue, step: Pace): Promise<JsonValue | undefined> {
  const bothArrays = Array.isArray(from) && Array.isArray(to);
  if (!bothArrays && !(isObject(from) && isObject(to))) {
    return (await jsonEqualsSliced(from, to, step)) ? undefined : [{ op: "replace", path: "", value: to }];
  }
  const ops: JsonValue[] = [];
  const pairs: [JsonValue, JsonValue, string][] = [[from, to, ""]];
  while (pairs.length > 0) {
    const [a, b, path] = pairs.pop()!;
    if (a === b) continue;
    if (Array.isArray(a) && Array.isArray(b)) {
      const common = Math.min(a.length, b.length);
      for (let i = a.length - 1; i >= b.length; i--) {
        ops.push({ op: "remove", path: `${path}/${i}` });
        const waiting = step();
        if (waiting !== undefined) await waiting;
      }
      for (let i = a.length; i < b.length; i++) {
        ops.push({ op: "add", path: `${path}/${i}`, value: b[i]! });
        const waiting = step();
        if (waiting !== undefined) await waiting;
      }
      for (let i = 0; i < common; i++) pairs.push([a[i]!, b[i]!, `${path}/${i}`]);
    } else if (isObject(a) && isObject(b)) {
      for (const key of memberNames(a)) {
        if (Object.hasOwn(b, key)) pairs.push([a[key]!, b[key]!, `${path}/${pointerToken(key)}`]);
        else ops.push({ op: "remove", path: `${path}/${pointerToken(key)}` });
        const waiting = step();
        if (waiting !== undefined) await waiting;
      }
      for (const key of memberNames(b)) {
        if (!Object.hasOwn(a, key)) ops.push({ op: "add", path: `${path}/${pointerToken(key)}`, value: b[key]! });
        const waiting = step();
        if (waiting !== undefined) await waiting;
      }
    } else if (!(await jsonEqualsSliced(a, b, step))) {
      ops.push({ op: "replace", path, value: b });
    }
    const waiting = step();
    if (waiting !== undefined) await waiting;
  }
  return ops.length === 0 ? undefined : ops;
}

const notExpressible = () => new DiffNotExpressibleError("no JSON Merge Patch turns this state into the target: RFC 7396 cannot set a member to null");

async function diffMerge(from: JsonValue, to: JsonValue, step: Pace): Promise<JsonValue | undefined> {
  if (!isObject(to)) return (await jsonEqualsSliced(from, to, step)) && !isObject(from) ? undefined : to;
  interface Frame {
    readonly a: JsonObject;
    readonly b: JsonObject;
    readonly patch: JsonObject;
    readonly parent: Frame | undefined;
    readonly key: string;
    /** Whether an empty patch here means "no change" (the old value was an object) or must stay. */
    readonly dropIfEmpty: boolean;
    /** `patch`'s member names, kept as they are defined: a patch as wide as a state is canonicalized next. */
    readonly names: Set<string>;
  }
  const root: Frame = { a: isObject(from) ? from : {}, b: to, patch: {}, parent: undefined, key: "", dropIfEmpty: isObject(from), names: new Set() };
  const set = (frame: Frame, key: string, value: JsonValue): void => {
    define(frame.patch, key, value);
    frame.names.add(key);
  };
  // Frames are finished children first (post-order), so that an empty nested patch is dropped.
  const open: Frame[] = [root];
  const done: Frame[] = [];
  while (open.length > 0) {
    const frame = open.pop()!;
    done.push(frame);
    const { a, b } = frame;
    for (const key of memberNames(a)) {
      if (!Object.hasOwn(b, key)) set(frame, key, null);
      const waiting = step();
      if (waiting !== undefined) await waiting;
    }
    for (const key of memberNames(b)) {
      const value = b[key]!;
      const old = Object.hasOwn(a, key) ? a[key] : undefined;
      if (value === null) {
        if (old !== null) throw notExpressible();
      } else if (isObject(value)) {
        if (old !== value) {
          const child: JsonObject = {};
          set(frame, key, child);
          open.push({ a: isObject(old) ? old : {}, b: value, patch: child, parent: frame, key, dropIfEmpty: isObject(old), names: new Set() });
        }
      } else if (old === undefined || !(await jsonEqualsSliced(old, value, step))) {
        set(frame, key, value);
      }
      const waiting = step();
      if (waiting !== undefined) await waiting;
    }
  }
  for (let i = done.length - 1; i >= 0; i--) {
    const frame = done[i]!;
    if (frame.parent !== undefined && frame.dropIfEmpty && frame.names.size === 0) {
      delete frame.parent.patch[frame.key];
      frame.parent.names.delete(frame.key);
    }
  }
  // The patch is the caller's alone and no one edits it but through `editJsonState`.
  for (const frame of done) if (frame.names.size > WIDE_OBJECT_MEMBERS) recordMemberNames(frame.patch, frame.names);
  return root.names.size === 0 && root.dropIfEmpty ? undefined : root.patch;
}

function define(target: JsonObject, key: string, value: JsonValue): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}
