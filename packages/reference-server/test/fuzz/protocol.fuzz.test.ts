// Property tests of the byte-exact core every JSON append goes through on the server:
// strict parsing, canonical JSON (RFC 8785), JSON Patch (RFC 6902) and JSON Merge Patch
// (RFC 7396) from @continuity/sdk/protocol. Whatever the input, each either gives a JSON value
// or throws its one documented error, never anything else, and never touches its inputs.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import {
  applyJsonDelta,
  canonicalJson,
  canonicalJsonText,
  diffJsonStates,
  isMalformedPatchError,
  isPatchNotApplicableError,
  MAX_JSON_DEPTH,
  parseJsonDocument,
  RESERVED_MEMBER_NAME,
  type JsonObject,
  type JsonValue,
} from "@continuity/sdk/protocol";
import { fuzzParameters, fuzzTimeoutMs } from "./fuzz-settings.js";

const PATCH = continuity.v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
const MERGE = continuity.v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;

const encoder = new TextEncoder();

/** JSON values with any well-formed Unicode, including the member names JS treats specially. */
const NAMES = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 6 }),
  fc.constantFrom("", "a", "b", "0", "1", "-", "~", "/", "~0", "~1", "a/b", "constructor", "toString", "hasOwnProperty", "é", "\u{1f600}"),
);
const { json: jsonArbitrary } = fc.letrec<{ json: JsonValue }>((tie) => ({
  json: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom<JsonValue>(null, true, false, 0, -0, 1, -1.5, 1e21, 5e-324, Number.MAX_SAFE_INTEGER + 2, ""),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: "grapheme", maxLength: 8 }),
    fc.array(tie("json"), { maxLength: 4 }),
    fc.dictionary(NAMES, tie("json"), { maxKeys: 4, noNullPrototype: true }),
  ),
}));
const JSON_VALUE = jsonArbitrary as fc.Arbitrary<JsonValue>;
const JSON_OBJECT = fc.dictionary(NAMES, JSON_VALUE, { maxKeys: 5, noNullPrototype: true }) as fc.Arbitrary<JsonObject>;

function hasReservedMember(value: JsonValue): boolean {
  if (Array.isArray(value)) return value.some(hasReservedMember);
  if (value === null || typeof value !== "object") return false;
  return Object.keys(value).some((key) => key === RESERVED_MEMBER_NAME || hasReservedMember(value[key]!));
}

/** The same value with every object's members inserted in reverse order. */
function reversedMembers(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(reversedMembers);
  if (value === null || typeof value !== "object") return value;
  const out: JsonObject = {};
  for (const key of Object.keys(value).reverse()) Object.defineProperty(out, key, { value: reversedMembers(value[key]!), enumerable: true, writable: true, configurable: true });
  return out;
}

/** Every JSON Pointer into `value` (RFC 6901), the root included. */
function pointers(value: JsonValue, prefix = ""): string[] {
  const out = [prefix];
  if (Array.isArray(value)) value.forEach((item, i) => out.push(...pointers(item, `${prefix}/${i}`)));
  else if (value !== null && typeof value === "object") {
    for (const key of Object.keys(value)) out.push(...pointers(value[key]!, `${prefix}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`));
  }
  return out;
}

/** A state and a JSON Patch document for it: real paths and junk, real operations and junk. */
const STATE_AND_PATCH = JSON_OBJECT.chain((state) => {
  const path = fc.oneof(fc.constantFrom(...pointers(state)), fc.constantFrom("", "/", "/-", "/0", "/00", "/01", "/-1", "/~", "/~2", "a", "/a/b/c"), fc.string({ maxLength: 6 }));
  const operation = fc.oneof(
    fc.record({ op: fc.constantFrom("add", "replace", "test"), path, value: JSON_VALUE }),
    fc.record({ op: fc.constant("remove"), path }),
    fc.record({ op: fc.constantFrom("move", "copy"), from: path, path }),
    // Structurally wrong operations: unknown op, missing or mistyped members, extra members.
    fc.record({ op: fc.oneof(fc.constantFrom("bogus", "ADD", ""), JSON_VALUE), path: fc.oneof(path, JSON_VALUE), value: JSON_VALUE, from: JSON_VALUE }, { requiredKeys: [] }),
  );
  const patch = fc.oneof({ weight: 8, arbitrary: fc.array(operation, { maxLength: 6 }) }, { weight: 1, arbitrary: JSON_VALUE });
  return fc.tuple(fc.constant(state), patch as fc.Arbitrary<JsonValue>);
});

/** Applies, and classifies what happened, checking the contract on the way. */
function outcomeOf(state: JsonValue, encoding: typeof PATCH | typeof MERGE, patch: JsonValue | Uint8Array): { ok: JsonValue } | { error: string } {
  const before = canonicalJsonText(state);
  const patchBefore = patch instanceof Uint8Array ? undefined : canonicalJsonText(patch);
  try {
    const result = applyJsonDelta(state, encoding, patch);
    canonicalJsonText(result); // the result is JSON
    return { ok: result };
  } catch (error) {
    if (isMalformedPatchError(error)) return { error: `malformed:${error.reason}` };
    if (isPatchNotApplicableError(error)) return { error: `not-applicable:${error.reason}` };
    throw error;
  } finally {
    expect(canonicalJsonText(state), "the state is never mutated").toBe(before);
    if (patchBefore !== undefined) expect(canonicalJsonText(patch as JsonValue), "the patch is never mutated").toBe(patchBefore);
  }
}

const same = (a: { ok: JsonValue } | { error: string }, b: { ok: JsonValue } | { error: string }) =>
  "ok" in a && "ok" in b ? canonicalJsonText(a.ok) === canonicalJsonText(b.ok) : "error" in a && "error" in b && a.error === b.error;

describe("canonical JSON and strict parsing (fuzzed)", () => {
  it("canonical bytes parse back to the same value, are a fixed point, and ignore member order", () => {
    fc.assert(
      fc.property(JSON_VALUE, (value) => {
        const text = canonicalJsonText(value);
        expect(canonicalJsonText(reversedMembers(value))).toBe(text);
        if (hasReservedMember(value)) {
          expect(() => parseJsonDocument(canonicalJson(value))).toThrow(expect.objectContaining({ reason: "reserved-member-name" }));
          return;
        }
        const parsed = parseJsonDocument(canonicalJson(value));
        expect(canonicalJsonText(parsed)).toBe(text);
        expect(new TextDecoder().decode(canonicalJson(parsed))).toBe(text);
      }),
      fuzzParameters(),
    );
  }, fuzzTimeoutMs());

  it("any bytes either parse to a JSON value or are refused as malformed", () => {
    const jsonish = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc.string({ unit: "binary", maxLength: 32 }).map((text) => encoder.encode(text)),
      // Near misses of real documents: one byte of valid JSON replaced.
      fc.tuple(JSON_VALUE, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([value, at, byte]) => {
        const bytes = canonicalJson(value).slice();
        if (bytes.length > 0) bytes[at % bytes.length] = byte;
        return bytes;
      }),
    );
    fc.assert(
      fc.property(jsonish, (bytes) => {
        let parsed: JsonValue;
        try {
          parsed = parseJsonDocument(bytes);
        } catch (error) {
          expect(isMalformedPatchError(error), String(error)).toBe(true);
          return;
        }
        expect(() => canonicalJsonText(parsed)).not.toThrow();
      }),
      fuzzParameters(2),
    );
  }, fuzzTimeoutMs(2));

  it("nesting is refused past MAX_JSON_DEPTH, never with a stack overflow, whatever the depth", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom("[", '{"a":'), (depth, open) => {
        const close = open === "[" ? "]" : "}";
        const bytes = encoder.encode(`${open.repeat(depth)}0${close.repeat(depth)}`);
        if (depth <= MAX_JSON_DEPTH) expect(() => parseJsonDocument(bytes)).not.toThrow();
        else expect(() => parseJsonDocument(bytes)).toThrow(expect.objectContaining({ reason: "too-deep" }));
      }),
      fuzzParameters(0.25),
    );
  }, fuzzTimeoutMs(0.25));
});

describe("JSON Patch and Merge Patch appliers (fuzzed)", () => {
  it("JSON Patch: any patch gives a JSON state or one of the two typed errors, the same from bytes as from the parsed document", () => {
    fc.assert(
      fc.property(STATE_AND_PATCH, ([state, patch]) => {
        const fromDocument = outcomeOf(state, PATCH, patch);
        if (!hasReservedMember(patch)) expect(same(outcomeOf(state, PATCH, canonicalJson(patch)), fromDocument)).toBe(true);
      }),
      fuzzParameters(2),
    );
  }, fuzzTimeoutMs(2));

  it("JSON Patch: a patch that fails changes nothing, one that applies is all of its operations", () => {
    fc.assert(
      fc.property(STATE_AND_PATCH, ([state, patch]) => {
        if (!Array.isArray(patch) || patch.length < 2) return;
        const whole = outcomeOf(state, PATCH, patch);
        // One operation at a time from the same state: all succeed exactly when the whole does.
        let current: JsonValue = state;
        let failed = false;
        for (const operation of patch) {
          const step = outcomeOf(current, PATCH, [operation]);
          if ("error" in step) {
            failed = true;
            break;
          }
          current = step.ok;
        }
        expect("error" in whole).toBe(failed);
        if ("ok" in whole) expect(canonicalJsonText(whole.ok)).toBe(canonicalJsonText(current));
      }),
      fuzzParameters(),
    );
  }, fuzzTimeoutMs());

  it("Merge Patch: any document gives a JSON state or a typed error, and applying it twice is applying it once", () => {
    fc.assert(
      fc.property(JSON_OBJECT, JSON_VALUE, (state, patch) => {
        const once = outcomeOf(state, MERGE, patch);
        if ("error" in once) return;
        const twice = outcomeOf(once.ok, MERGE, patch);
        expect(same(twice, once)).toBe(true);
      }),
      fuzzParameters(2),
    );
  }, fuzzTimeoutMs(2));

  it("the diff of any two states applies to the first and gives the second (JSON Patch)", () => {
    fc.assert(
      fc.property(JSON_VALUE, JSON_VALUE, (from, to) => {
        const diff = diffJsonStates(from, to, PATCH);
        expect(canonicalJsonText(applyJsonDelta(from, PATCH, diff))).toBe(canonicalJsonText(to));
      }),
      fuzzParameters(),
    );
  }, fuzzTimeoutMs());

  it("the diff of two states a merge-patch stream can reach applies and gives the second (Merge Patch)", () => {
    // States of merge-patch streams: what merge patches make of the initial `{}`.
    const reachable = JSON_VALUE.map((patch) => {
      const outcome = outcomeOf({}, MERGE, patch);
      return "ok" in outcome ? outcome.ok : {};
    });
    fc.assert(
      fc.property(reachable, reachable, (from, to) => {
        const diff = diffJsonStates(from, to, MERGE);
        expect(canonicalJsonText(applyJsonDelta(from, MERGE, diff))).toBe(canonicalJsonText(to));
      }),
      fuzzParameters(),
    );
  }, fuzzTimeoutMs());
});
