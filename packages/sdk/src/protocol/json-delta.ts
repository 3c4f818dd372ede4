/// <reference path="./json-merge-patch.d.ts" />
/**
 * Applying and computing JSON deltas (RFC 6902 JSON Patch, RFC 7396 JSON Merge Patch) with the
 * exact semantics the spec pins down (docs/spec/hashing.md, "JSON state"). Snapshot hashes
 * commit to materialized states, so every implementation must reach byte-identical states
 * from the same deltas; that is why the applier here is strict where RFC 6902 leaves room and
 * never consults inherited JavaScript properties.
 */
import jsonPatch from "fast-json-patch";
import jsonMergePatch from "json-merge-patch";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { DiffNotExpressibleError, MalformedPatchError, PatchNotApplicableError } from "./errors.js";
import { countOf, memberNames } from "./member-names.js";
import {
  canonicalJson,
  cloneJson,
  defineMember,
  findProblem,
  isJsonObject,
  jsonDepth,
  jsonEquals,
  MAX_JSON_DEPTH,
  parseJsonDocument,
  RESERVED_MEMBER_NAME,
  type JsonObject,
  type JsonValue,
} from "./json.js";

/** The two encodings a server can apply. */
export type JsonDeltaEncoding = DeltaEncoding.DELTA_ENCODING_JSON_PATCH | DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;

/**
 * Bounds on what applying deltas may build and cost, for servers that apply deltas from
 * untrusted clients (LIMIT-020, LIMIT-021, LIMIT-023, LIMIT-024). Without them only the nesting
 * depth is bounded.
 * Sizes are bytes of canonical JSON (`canonicalSize`).
 */
export interface JsonDeltaOptions {
  /**
   * Largest state allowed after any operation. Exceeding it fails with
   * `PatchNotApplicableError` "state-too-large" before the operation's value is copied.
   */
  readonly maxStateBytes?: number;
  /**
   * Most bytes the `copy` operations of all patches of one call may insert: a copy stands for
   * the `add` of the value it copies, so this bounds the work a small patch can ask for (a
   * chain of self-doubling copies). Exceeding it fails with "copies-too-large" before the copy
   * is made.
   */
  readonly maxCopyBytes?: number;
  /**
   * Most bytes the `move` operations of one call may carry to a place deeper than their `from`
   * (a `path` of more reference tokens). Such a move must check that the value still nests no
   * deeper than `MAX_JSON_DEPTH` there, which reads all of it, as a copy does; a move to a place
   * no deeper costs nothing. Exceeding it fails with "moves-too-large" before the value leaves
   * its place.
   */
  readonly maxDeeperMoveBytes?: number;
  /**
   * Most array items the operations of one call may shift: inserting an item at index `i` of an
   * array of `n` items moves the `n - i` after it, removing one moves `n - i - 1` (appending at
   * `-` or removing the last item, none). Each shift is a step of work however small the
   * operation is, so a patch of many small operations on a long array would otherwise cost
   * its length again and again. Exceeding it fails with "shifts-too-large" before the items move.
   */
  readonly maxShiftedItems?: number;
}

/** One RFC 6902 operation after structural validation. */
export type Operation =
  | { op: "add" | "replace" | "test"; path: string[]; value: JsonValue }
  | { op: "remove"; path: string[] }
  | { op: "move" | "copy"; path: string[]; from: string[] };

const OPERATIONS = new Set(["add", "remove", "replace", "move", "copy", "test"]);
const ARRAY_INDEX = /^(?:0|[1-9][0-9]*)$/;
const NON_ASCII = /[^\u0000-\u007f]/;

/**
 * The state after applying one JSON delta to `state`. Pure: neither `state` nor `patch` is
 * mutated, and the result shares no objects with them. `patch` is the parsed document or its
 * raw bytes (parsed with `parseJsonDocument`).
 *
 * Throws `MalformedPatchError` when the patch does not have the structure its encoding
 * requires (INVALID_ARGUMENT / MALFORMED_PAYLOAD) and `PatchNotApplicableError` when it is
 * well formed but does not fit this state (FAILED_PRECONDITION / PATCH_NOT_APPLICABLE). A JSON
 * Patch applies all of its operations or none.
 */
export function applyJsonDelta(state: JsonValue, encoding: DeltaEncoding, patch: JsonValue | Uint8Array, options?: JsonDeltaOptions): JsonValue {
  return materializeJsonState(state, encoding, [patch], options);
}

/**
 * The state after applying `patches` in order to `state`, copying `state` once instead of once
 * per delta. This is how a server materializes a version from a snapshot and the deltas after
 * it. Throws like `applyJsonDelta` for the first patch that fails; `state` is never mutated.
 */
export function materializeJsonState(
  state: JsonValue,
  encoding: DeltaEncoding,
  patches: Iterable<JsonValue | Uint8Array>,
  options?: JsonDeltaOptions,
): JsonValue {
  const jsonEncoding = requireJsonEncoding(encoding);
  let current = cloneJson(state);
  const budget = createBudget(current, options);
  for (const raw of patches) {
    const patch = raw instanceof Uint8Array ? parseJsonDocument(raw) : checkPatchDocument(raw);
    if (jsonEncoding === DeltaEncoding.DELTA_ENCODING_JSON_PATCH) {
      current = applyOperations(current, parseOperations(patch), budget);
    } else {
      // A merge patch adds at most itself; its nulls only remove, so it need not fit whole.
      budget.grow(patch, undefined, "", false);
      current = applyMergePatch(current, patch);
      budget.settle(current, undefined);
    }
  }
  return current;
}

/**
 * What the operations of one call (one append) may ask for beyond their own bytes: copies
 * (LIMIT-021), moves to deeper places (LIMIT-023) and shifted array items (LIMIT-024). Both
 * appliers count with it, so they reach the same verdicts; each check comes before the work
 * it bounds.
 */
export interface WorkBudget {
  /** Accounts for copying `value`; throws "copies-too-large" past `maxCopyBytes`. */
  copy(value: JsonValue, fail: Fail): void;
  /** Accounts for moving `value` to a deeper place; throws "moves-too-large" past `maxDeeperMoveBytes`. */
  moveDeeper(value: JsonValue, fail: Fail): void;
  /** Accounts for `count` array items shifted by one insertion or removal; throws "shifts-too-large" past `maxShiftedItems`. */
  shift(count: number, fail: Fail): void;
  /**
   * Starts the next group of patches (an importer's next appended batch), counted afresh;
   * false, and nothing started, once the groups counted so far have together used more than
   * one group's bound of any kind.
   */
  nextGroup(): boolean;
}

export function createWorkBudget(options: JsonDeltaOptions | undefined): WorkBudget {
  const maxCopies = options?.maxCopyBytes ?? Infinity;
  const maxMoved = options?.maxDeeperMoveBytes ?? Infinity;
  const maxShifts = options?.maxShiftedItems ?? Infinity;
  let copied = 0;
  let moved = 0;
  let shifted = 0;
  const used = { copied: 0, moved: 0, shifted: 0 };
  return {
    copy(value, fail) {
      if (maxCopies === Infinity) return;
      copied += canonicalSize(value, maxCopies);
      if (copied > maxCopies) throw fail("copies-too-large", `the copies would insert more than ${maxCopies} bytes in all`);
    },
    moveDeeper(value, fail) {
      if (maxMoved === Infinity) return;
      moved += canonicalSize(value, maxMoved);
      if (moved > maxMoved) throw fail("moves-too-large", `the moves to deeper places would carry more than ${maxMoved} bytes in all`);
    },
    shift(count, fail) {
      shifted += count;
      if (shifted > maxShifts) throw fail("shifts-too-large", `the operations would shift more than ${maxShifts} array items in all`);
    },
    nextGroup() {
      used.copied += copied;
      used.moved += moved;
      used.shifted += shifted;
      if (used.copied > maxCopies || used.moved > maxMoved || used.shifted > maxShifts) return false;
      copied = 0;
      moved = 0;
      shifted = 0;
      return true;
    },
  };
}

/** What one call may still build, copy, move and shift; all checks happen before the work they bound. */
interface Budget extends Omit<WorkBudget, "nextGroup"> {
  /**
   * Accounts for inserting `value` (under member name `key`, if any) into the state, before it
   * is copied; throws when the value alone could not fit, if it must end up whole in the state.
   */
  grow(value: JsonValue, fail: Fail | undefined, key?: string, whole?: boolean): void;
  /** After an operation: throws when the state now exceeds its bound (measured only if it may). */
  settle(state: JsonValue, fail: Fail | undefined): void;
}

function createBudget(state: JsonValue, options: JsonDeltaOptions | undefined): Budget {
  const maxState = options?.maxStateBytes ?? Infinity;
  // An upper bound of the state's size: measured exactly only when it could pass the bound.
  let stateBound = maxState === Infinity ? 0 : canonicalSize(state, maxState);
  const work = createWorkBudget(options);
  const tooLarge = (fail: Fail | undefined, message: string) =>
    fail === undefined ? new PatchNotApplicableError("state-too-large", message) : fail("state-too-large", message);
  return {
    grow(value, fail, key = "", whole = true) {
      if (maxState === Infinity) return;
      const size = canonicalSize(value, maxState);
      if (whole && size > maxState) throw tooLarge(fail, `the value alone is larger than ${maxState} bytes of canonical JSON`);
      // The value, its member name and colon, and a comma.
      stateBound += size + canonicalSize(key) + 2;
    },
    settle(state, fail) {
      if (stateBound <= maxState) return;
      // Members replaced or removed since the last measure may have made room.
      stateBound = canonicalSize(state, maxState);
      if (stateBound > maxState) throw tooLarge(fail, `the state would be larger than ${maxState} bytes of canonical JSON`);
    },
    copy: work.copy,
    moveDeeper: work.moveDeeper,
    shift: work.shift,
  };
}

/**
 * The length in bytes of `canonicalJson(value)`, computed without building it; once the count
 * passes `stopAbove` it returns early with a count above it, so measuring costs at most the
 * bound. Member order does not change the length, and the canonical form writes strings and
 * numbers as `JSON.stringify` does.
 */
export function canonicalSize(value: JsonValue, stopAbove = Infinity): number {
  return measure(value, stopAbove);
}

/**
 * `canonicalSize` of one node, stopping once its count passes `budget`. A plain recursive
 * function rather than a closure per call: the editor measures every member name and value it
 * inserts, so a closure made per measurement was most of what measuring a small value cost.
 * A wide object's names come from its index (member-names.ts) rather than `Object.keys`.
 */
function measure(node: JsonValue, budget: number): number {
  if (typeof node === "string") return utf8Length(JSON.stringify(node));
  if (node === null || typeof node !== "object") {
    // Numbers are written as `String` writes them (so `-0` as `0`); null, true, false.
    return typeof node === "number" ? String(node).length : node === false ? 5 : 4;
  }
  if (Array.isArray(node)) {
    let total = node.length === 0 ? 2 : node.length + 1;
    for (const item of node) {
      if (total > budget) return total;
      total += measure(item, budget - total);
    }
    return total;
  }
  const names = memberNames(node);
  const count = countOf(names);
  let total = count === 0 ? 2 : count * 2 + 1;
  for (const key of names) {
    if (total > budget) return total;
    total += utf8Length(JSON.stringify(key));
    total += measure(node[key]!, budget - total);
  }
  return total;
}

function utf8Length(text: string): number {
  if (!NON_ASCII.test(text)) return text.length;
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A surrogate pair is two UTF-16 units and four UTF-8 bytes; JSON text has no lone ones.
    if (unit >= 0x80) bytes += unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff) ? 1 : 2;
  }
  return bytes;
}

/**
 * Checks that a parsed delta document has the structure its encoding requires, whatever the
 * state it will meet (HASH-035, APPEND-041): for a JSON Patch, an array of well-formed
 * operations; any JSON value is a merge patch. Throws `MalformedPatchError`. Lets a server
 * judge structure once per delta during validation without applying anything.
 */
export function checkJsonDeltaStructure(encoding: DeltaEncoding, document: JsonValue): void {
  if (requireJsonEncoding(encoding) === DeltaEncoding.DELTA_ENCODING_JSON_PATCH) parseOperations(document);
}

/**
 * The payload a server stores and hashes for the bytes a client sent (HASH-011, HASH-026): for
 * JSON encodings the canonical JSON of the strictly parsed document, after checking that a JSON
 * Patch is well formed whatever the state (HASH-035); for opaque streams the bytes as sent.
 * Lets a server reject malformed payloads during validation, before it reads any state.
 * Throws `MalformedPatchError` like `parseJsonDocument` and `applyJsonDelta`.
 */
export function canonicalDeltaPayload(encoding: DeltaEncoding, payload: Uint8Array): Uint8Array {
  if (encoding === DeltaEncoding.DELTA_ENCODING_OPAQUE) return payload;
  const document = parseJsonDocument(payload);
  if (requireJsonEncoding(encoding) === DeltaEncoding.DELTA_ENCODING_JSON_PATCH) parseOperations(document);
  return canonicalJson(document);
}

/**
 * A patch document of `encoding` that turns `from` into `to`: `[]` or `{}` when they are equal
 * (for a Merge Patch of an equal non-object state, that state, since `{}` would turn it into an
 * object). The result shares no objects with the inputs, and `applyJsonDelta(from, encoding,
 * diff)` is guaranteed to equal `to`, which this function checks before returning. Used for
 * restores (compensating deltas) and for clients that edit a local copy and send the
 * difference.
 *
 * JSON Patch: the diff of fast-json-patch `compare`; when the roots are not both objects or
 * both arrays, or the diff fails the check, one `replace` of the root (`""`).
 * Merge Patch: the RFC 7396 diff; arrays and scalars are replaced whole. Throws
 * `DiffNotExpressibleError` when `to` holds a `null` member value that `from` does not, which
 * no merge patch can produce; states reached by merge patches never do, so a diff between two
 * states of one merge-patch stream always exists.
 */
export function diffJsonStates(from: JsonValue, to: JsonValue, encoding: DeltaEncoding): JsonValue {
  if (requireJsonEncoding(encoding) === DeltaEncoding.DELTA_ENCODING_JSON_PATCH) {
    if (jsonEquals(from, to)) return [];
    const sameContainerKind = (isJsonObject(from) && isJsonObject(to)) || (Array.isArray(from) && Array.isArray(to));
    if (sameContainerKind) {
      const candidate = cloneJson(jsonPatch.compare(from, to) as unknown as JsonValue);
      if (producesTarget(from, to, encoding, candidate)) return candidate;
    }
    return [{ op: "replace", path: "", value: cloneJson(to) }];
  }
  // `{}` changes nothing only when the state is an object; any other state is "changed" into
  // itself by replacing it with itself.
  if (jsonEquals(from, to)) return isJsonObject(from) ? {} : cloneJson(to);
  // `generate` answers undefined for "no change" and null for "replace the root with null";
  // its result shares objects with `to`, hence the copy.
  const generated = jsonMergePatch.generate(from, to);
  const candidate = cloneJson((generated === undefined ? {} : generated) as JsonValue);
  if (producesTarget(from, to, encoding, candidate)) return candidate;
  throw new DiffNotExpressibleError("no JSON Merge Patch turns this state into the target: RFC 7396 cannot set a member to null");
}

function producesTarget(from: JsonValue, to: JsonValue, encoding: DeltaEncoding, candidate: JsonValue): boolean {
  try {
    return jsonEquals(applyJsonDelta(from, encoding, candidate), to);
  } catch {
    return false;
  }
}

export function requireJsonEncoding(encoding: DeltaEncoding): JsonDeltaEncoding {
  if (encoding !== DeltaEncoding.DELTA_ENCODING_JSON_PATCH && encoding !== DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH) {
    throw new RangeError(`deltas of encoding ${String(encoding)} are not JSON and cannot be applied or diffed`);
  }
  return encoding;
}

/** Patch documents given as values get the checks that `parseJsonDocument` gives bytes. */
export function checkPatchDocument(patch: JsonValue): JsonValue {
  const problem = findProblem(patch, { reservedNames: true });
  if (problem !== undefined) throw new MalformedPatchError(problem.reason, problem.message);
  return patch;
}

// ---------------------------------------------------------------------------------------------
// RFC 7396

/** RFC 7396 `MergePatch(target, patch)`, mutating `target`, which the caller owns. */
function applyMergePatch(target: JsonValue, patch: JsonValue): JsonValue {
  if (!isJsonObject(patch)) return cloneJson(patch);
  const result: JsonObject = isJsonObject(target) ? target : {};
  for (const key of Object.keys(patch)) {
    const value = patch[key]!;
    if (value === null) {
      delete result[key];
    } else {
      defineMember(result, key, applyMergePatch(Object.hasOwn(result, key) ? result[key]! : null, value));
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// RFC 6902

/**
 * Checks the whole patch's structure before anything is applied, so a malformed operation
 * anywhere makes the delta malformed regardless of the state it meets.
 */
export function parseOperations(patch: JsonValue): Operation[] {
  if (!Array.isArray(patch)) {
    throw new MalformedPatchError("invalid-operation", "a JSON Patch must be an array of operations");
  }
  return patch.map((raw, index): Operation => {
    const malformed = (message: string, reason: "invalid-operation" | "invalid-pointer" = "invalid-operation") =>
      new MalformedPatchError(reason, `operation ${index}: ${message}`, { operationIndex: index });
    if (!isJsonObject(raw)) throw malformed("not an object");
    const op = raw["op"];
    if (typeof op !== "string" || !OPERATIONS.has(op)) throw malformed(`"op" must be one of ${[...OPERATIONS].join(", ")}`);
    const path = parsePointer(raw["path"], "path", malformed);
    switch (op) {
      case "add":
      case "replace":
      case "test":
        if (!Object.hasOwn(raw, "value")) throw malformed(`"${op}" needs a "value"`);
        return { op, path, value: raw["value"]! };
      case "remove":
        if (path.length === 0) throw malformed(`"remove" of the whole document is not defined`);
        return { op, path };
      default: {
        const from = parsePointer(raw["from"], "from", malformed);
        if (op === "move" && from.length < path.length && from.every((token, i) => token === path[i])) {
          throw malformed(`"move" cannot move a location into one of its children`);
        }
        return { op: op as "move" | "copy", path, from };
      }
    }
  });
}

/** RFC 6901 JSON Pointer to reference tokens; `~` must be followed by `0` or `1`. */
function parsePointer(
  pointer: JsonValue | undefined,
  member: string,
  malformed: (message: string, reason?: "invalid-pointer") => MalformedPatchError,
): string[] {
  if (typeof pointer !== "string") throw malformed(`"${member}" must be a string`);
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw malformed(`"${member}" must be empty or start with "/"`, "invalid-pointer");
  return pointer
    .slice(1)
    .split("/")
    .map((token) => {
      if (/~(?![01])/.test(token)) throw malformed(`"${member}" has a "~" not followed by 0 or 1`, "invalid-pointer");
      const unescaped = token.replaceAll("~1", "/").replaceAll("~0", "~");
      if (unescaped === RESERVED_MEMBER_NAME) {
        throw new MalformedPatchError("reserved-member-name", `"${member}" names the reserved member "${RESERVED_MEMBER_NAME}"`);
      }
      return unescaped;
    });
}

function applyOperations(document: JsonValue, operations: readonly Operation[], budget: Budget): JsonValue {
  let current = document;
  operations.forEach((operation, index) => {
    const fail = (reason: ConstructorParameters<typeof PatchNotApplicableError>[0], message: string) =>
      new PatchNotApplicableError(reason, `operation ${index} (${operation.op} ${formatPointer(operation.path)}): ${message}`, {
        operationIndex: index,
      });
    // Bounds are checked before the value is copied, so a chain of self-doubling copies
    // stops at the bound instead of after the work.
    const insert = (value: JsonValue): JsonValue => {
      budget.grow(value, fail, operation.path.at(-1));
      return cloneJson(value);
    };
    switch (operation.op) {
      case "add":
        current = addValue(current, operation.path, insert(operation.value), fail, budget);
        break;
      case "remove":
        removeValue(current, operation.path, fail, budget);
        break;
      case "replace":
        resolve(current, operation.path, fail);
        current = operation.path.length === 0 ? insert(operation.value) : replaceValue(current, operation.path, insert(operation.value), fail);
        break;
      case "test":
        if (!jsonEquals(resolve(current, operation.path, fail), operation.value)) throw fail("test-failed", "value differs");
        break;
      case "copy":
      {
        const value = resolve(current, operation.from, fail);
        budget.copy(value, fail);
        current = addValue(current, operation.path, insert(value), fail, budget);
      }
        break;
      case "move": {
        // `from` is never the root here: moving the root anywhere but onto itself is malformed.
        const value = resolve(current, operation.from, fail);
        if (operation.from.length === operation.path.length && operation.from.every((token, i) => token === operation.path[i])) break;
        const deeper = operation.path.length > operation.from.length;
        if (deeper) budget.moveDeeper(value, fail);
        removeValue(current, operation.from, fail, budget);
        // A member name may be longer at the target; the value's size does not change.
        budget.grow(operation.path.at(-1)!, fail);
        current = addValue(current, operation.path, value, fail, budget, !deeper);
        break;
      }
    }
    budget.settle(current, fail);
  });
  return current;
}

export type Fail = (reason: ConstructorParameters<typeof PatchNotApplicableError>[0], message: string) => PatchNotApplicableError;

/** The value a pointer names; every step must be an own member or an existing index. */
export function resolve(document: JsonValue, path: readonly string[], fail: Fail): JsonValue {
  let current = document;
  for (const token of path) {
    current = child(current, token, fail);
  }
  return current;
}

function child(container: JsonValue, token: string, fail: Fail): JsonValue {
  if (Array.isArray(container)) {
    const index = arrayIndex(token, container.length - 1, fail);
    return container[index]!;
  }
  if (isJsonObject(container)) {
    if (!Object.hasOwn(container, token)) throw fail("path-not-found", `no member ${JSON.stringify(token)}`);
    return container[token]!;
  }
  throw fail("not-a-container", `cannot step into a ${container === null ? "null" : typeof container} with ${JSON.stringify(token)}`);
}

/** Parses an array index token; `-` and leading zeros never name an existing element. */
export function arrayIndex(token: string, max: number, fail: Fail): number {
  if (!ARRAY_INDEX.test(token)) throw fail("path-not-found", `${JSON.stringify(token)} is not an array index`);
  const index = Number(token);
  if (index > max) throw fail("index-out-of-range", `index ${token} is beyond the end of the array`);
  return index;
}

function parentOf(document: JsonValue, path: readonly string[], fail: Fail): JsonValue {
  return resolve(document, path.slice(0, -1), fail);
}

/**
 * `nestingChecked`: the value is moved to no deeper a place than it was at, so it fits there as
 * it did (every value of a state does): measuring its depth again would walk all of it, for
 * every such move of an operation list.
 */
function addValue(document: JsonValue, path: readonly string[], value: JsonValue, fail: Fail, budget: Budget, nestingChecked = false): JsonValue {
  if (path.length === 0) return value;
  if (!nestingChecked && path.length + jsonDepth(value) > MAX_JSON_DEPTH) throw fail("too-deep", `the result would nest deeper than ${MAX_JSON_DEPTH} levels`);
  const parent = parentOf(document, path, fail);
  const token = path.at(-1)!;
  if (Array.isArray(parent)) {
    const index = token === "-" ? parent.length : arrayIndex(token, parent.length, fail);
    budget.shift(parent.length - index, fail);
    parent.splice(index, 0, value);
  } else if (isJsonObject(parent)) {
    defineMember(parent, token, value);
  } else {
    throw fail("not-a-container", `the parent is a ${parent === null ? "null" : typeof parent}`);
  }
  return document;
}

function replaceValue(document: JsonValue, path: readonly string[], value: JsonValue, fail: Fail): JsonValue {
  if (path.length + jsonDepth(value) > MAX_JSON_DEPTH) throw fail("too-deep", `the result would nest deeper than ${MAX_JSON_DEPTH} levels`);
  const parent = parentOf(document, path, fail);
  const token = path.at(-1)!;
  if (Array.isArray(parent)) {
    parent[arrayIndex(token, parent.length - 1, fail)] = value;
  } else {
    defineMember(parent as JsonObject, token, value);
  }
  return document;
}

function removeValue(document: JsonValue, path: readonly string[], fail: Fail, budget: Budget): void {
  resolve(document, path, fail);
  const parent = parentOf(document, path, fail);
  const token = path.at(-1)!;
  if (Array.isArray(parent)) {
    const index = Number(token);
    budget.shift(parent.length - index - 1, fail);
    parent.splice(index, 1);
  } else {
    delete (parent as JsonObject)[token];
  }
}

export function formatPointer(path: readonly string[]): string {
  return path.length === 0 ? '""' : path.map((token) => `/${token.replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");
}
