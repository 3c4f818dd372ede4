/**
 * JSON documents as the protocol sees them: strict parsing of client bytes (I-JSON, RFC 7493)
 * and their canonical bytes (RFC 8785, JCS). Every JSON payload and every JSON state that a
 * hash commits to passes through here, so two implementations that follow the spec derive the
 * same bytes from the same document.
 */
import canonicalize from "canonicalize";
import { isWellFormedUnicode, utf8 } from "./bytes.js";
import { MalformedPatchError } from "./errors.js";
import { countOf, memberNames } from "./member-names.js";

/** A JSON object: string member names to JSON values. */
export interface JsonObject {
  [member: string]: JsonValue;
}

/** Any JSON value, as `JSON.parse` produces it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;

/**
 * Deepest nesting of arrays and objects accepted in payloads and states (`{}` has depth 1,
 * `[{}]` depth 2). A fixed bound keeps recursive code in every implementation safe from stack
 * exhaustion and makes "too deep" the same verdict everywhere (spec HASH-024).
 */
export const MAX_JSON_DEPTH = 256;

/**
 * Member name that JSON documents of JSON streams must not contain, at any depth (spec
 * HASH-025). In JavaScript `__proto__` is an accessor on every object, so accepting it would
 * leave each JS implementation one careless assignment away from prototype pollution; banning
 * it in the protocol keeps every implementation's materialized state identical.
 */
export const RESERVED_MEMBER_NAME = "__proto__";

/**
 * The state of every JSON stream at version 0: the empty object. Frozen because it is shared;
 * `applyJsonDelta` never mutates its input, so passing it in is safe.
 */
export const INITIAL_JSON_STATE: JsonValue = Object.freeze({}) as JsonObject;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Parses client bytes as one JSON document, strictly: valid UTF-8 without a byte-order mark,
 * RFC 8259 syntax, no duplicate member names, no lone surrogates (also not as `\ud800`
 * escapes), no number outside the IEEE 754 double range, at most `MAX_JSON_DEPTH` levels, no
 * member named `__proto__`. Numbers are read as doubles, as RFC 8785 requires, so integers
 * beyond 2^53 are rounded; send such values as strings.
 *
 * Throws `MalformedPatchError` for anything else: the server answers INVALID_ARGUMENT /
 * MALFORMED_PAYLOAD and the same bytes can never become valid.
 */
export function parseJsonDocument(bytes: Uint8Array): JsonValue {
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch (cause) {
    throw new MalformedPatchError("invalid-utf8", "payload is not valid UTF-8", { cause });
  }
  if (text.charCodeAt(0) === 0xfeff) {
    throw new MalformedPatchError("byte-order-mark", "payload starts with a byte-order mark");
  }
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch (cause) {
    throw new MalformedPatchError("invalid-json", `payload is not JSON: ${describe(cause)}`, { cause });
  }
  checkMembersAndDepth(text);
  const problem = findProblem(value, { reservedNames: true });
  if (problem !== undefined) throw new MalformedPatchError(problem.reason, problem.message);
  return value;
}

/**
 * RFC 8785 canonical JSON of `value`, as UTF-8 bytes: members sorted by UTF-16 code units,
 * no insignificant whitespace, numbers in ECMAScript shortest round-trip form, minimal string
 * escapes. These are the bytes that delta payloads, snapshot states and resume payloads
 * commit to. Throws `TypeError` when `value` is not JSON (undefined, functions, NaN, Infinity,
 * class instances, lone surrogates) instead of silently dropping or rewriting it.
 */
export function canonicalJson(value: JsonValue): Uint8Array {
  return utf8(canonicalJsonText(value));
}

/** `canonicalJson` as a string, for logs and tests; hash the bytes, not this. */
export function canonicalJsonText(value: JsonValue): string {
  const problem = findProblem(value, { reservedNames: false });
  if (problem !== undefined) throw new TypeError(`not a JSON value: ${problem.message}`);
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError("not a JSON value");
  return text;
}

/**
 * JSON equality as RFC 6902 `test` defines it: same type, numbers equal by value, objects
 * with the same member names and equal members in any order, arrays equal element-wise.
 */
export function jsonEquals(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, index) => jsonEquals(item, b[index]!));
  }
  // A wide object's names come from its index (member-names.ts), and the counts are compared
  // first: a JSON Patch `test` of a state's object of a million members against a small value
  // is decided without listing the million names.
  const names = memberNames(a);
  if (countOf(names) !== countOf(memberNames(b))) return false;
  for (const key of names) if (!Object.hasOwn(b, key) || !jsonEquals(a[key]!, b[key]!)) return false;
  return true;
}

/**
 * Deep copy made of plain arrays and objects. Members are defined, not assigned, so a copy
 * can never reach `Object.prototype` whatever its member names are.
 */
export function cloneJson<T extends JsonValue>(value: T): T {
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((item) => cloneJson(item)) as T;
  const copy: JsonObject = {};
  for (const key of Object.keys(value)) defineMember(copy, key, cloneJson(value[key]!));
  return copy as T;
}

/** Sets an own, enumerable member without ever invoking an inherited setter. */
export function defineMember(target: JsonObject, key: string, value: JsonValue): void {
  Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}

/** Nesting depth of `value`: 0 for scalars, 1 for `{}` or `[]`, and so on. */
export function jsonDepth(value: JsonValue): number {
  if (value === null || typeof value !== "object") return 0;
  let deepest = 0;
  for (const child of Array.isArray(value) ? value : Object.values(value)) {
    const depth = jsonDepth(child);
    if (depth > deepest) deepest = depth;
  }
  return deepest + 1;
}

/** True for a JSON object (not an array, not null). */
export function isJsonObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

interface Problem {
  reason: "lone-surrogate" | "number-out-of-range" | "reserved-member-name" | "too-deep" | "invalid-json";
  message: string;
}

/**
 * Walks a value once and reports the first thing that keeps it from being an acceptable JSON
 * document. Shared by parsing (client bytes) and canonicalization (values built in code).
 */
export function findProblem(value: unknown, options: { reservedNames: boolean }): Problem | undefined {
  // The path to the value being judged, as tokens: a problem's message names it, and building
  // it as text for every member (it was) cost more than judging the members.
  const trail: (string | number)[] = [];
  const at = (): string => trail.map((token) => `/${typeof token === "number" ? token : token.replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");
  const walk = (node: unknown, depth: number): Problem | undefined => {
    switch (typeof node) {
      case "boolean":
        return undefined;
      case "string":
        return isWellFormedUnicode(node) ? undefined : { reason: "lone-surrogate", message: `string at "${at()}" contains a lone surrogate` };
      case "number":
        return Number.isFinite(node) ? undefined : { reason: "number-out-of-range", message: `number at "${at()}" is not a finite IEEE 754 double` };
      case "object": {
        if (node === null) return undefined;
        if (depth + 1 > MAX_JSON_DEPTH) {
          return { reason: "too-deep", message: `nesting deeper than ${MAX_JSON_DEPTH} levels at "${at()}"` };
        }
        if (Array.isArray(node)) {
          for (let index = 0; index < node.length; index++) {
            if (!(index in node)) return { reason: "invalid-json", message: `array at "${at()}" has a hole at ${index}` };
            trail.push(index);
            const problem = walk(node[index], depth + 1);
            if (problem !== undefined) return problem;
            trail.pop();
          }
          return undefined;
        }
        const prototype: unknown = Object.getPrototypeOf(node);
        if (prototype !== Object.prototype && prototype !== null) {
          return { reason: "invalid-json", message: `value at "${at()}" is not a plain object` };
        }
        for (const key of Object.keys(node)) {
          trail.push(key);
          if (!isWellFormedUnicode(key)) return { reason: "lone-surrogate", message: `member name at "${at()}" contains a lone surrogate` };
          if (options.reservedNames && key === RESERVED_MEMBER_NAME) {
            return { reason: "reserved-member-name", message: `member name "${RESERVED_MEMBER_NAME}" is reserved (at "${at()}")` };
          }
          const problem = walk((node as Record<string, unknown>)[key], depth + 1);
          if (problem !== undefined) return problem;
          trail.pop();
        }
        return undefined;
      }
      default:
        return { reason: "invalid-json", message: `value at "${at()}" is a ${typeof node}` };
    }
  };
  return walk(value, 0);
}

interface Frame {
  names: Set<string> | undefined;
  expectName: boolean;
}

/**
 * Second pass over text that `JSON.parse` accepted: `JSON.parse` keeps the last of duplicate
 * member names silently, and I-JSON forbids duplicates because parsers disagree on which one
 * wins. Also bounds the nesting depth before anything recursive runs.
 */
function checkMembersAndDepth(text: string): void {
  const stack: Frame[] = [];
  // Where the next backslash is (-1: none left), so that a string's end is found by native
  // searches rather than a loop over each of its code units.
  let backslash = text.indexOf("\\");
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (char === 0x22 /* " */) {
      let end = text.indexOf('"', i + 1);
      let escaped = false;
      if (backslash !== -1 && backslash < i) backslash = text.indexOf("\\", i + 1);
      while (backslash !== -1 && backslash < end) {
        // An escape: the code unit after the backslash is not the string's end.
        escaped = true;
        if (backslash + 1 === end) end = text.indexOf('"', end + 1);
        backslash = text.indexOf("\\", backslash + 2);
      }
      const frame = stack.at(-1);
      if (frame?.names !== undefined && frame.expectName) {
        const name = escaped ? (JSON.parse(text.slice(i, end + 1)) as string) : text.slice(i + 1, end);
        if (frame.names.has(name)) {
          throw new MalformedPatchError("duplicate-member", `duplicate member name ${JSON.stringify(name)}`);
        }
        frame.names.add(name);
        frame.expectName = false;
      }
      i = end;
    } else if (char === 0x7b /* { */ || char === 0x5b /* [ */) {
      if (stack.length >= MAX_JSON_DEPTH) {
        throw new MalformedPatchError("too-deep", `nesting deeper than ${MAX_JSON_DEPTH} levels`);
      }
      stack.push({ names: char === 0x7b ? new Set() : undefined, expectName: char === 0x7b });
    } else if (char === 0x7d /* } */ || char === 0x5d /* ] */) {
      stack.pop();
    } else if (char === 0x2c /* , */) {
      const frame = stack.at(-1);
      if (frame?.names !== undefined) frame.expectName = true;
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
