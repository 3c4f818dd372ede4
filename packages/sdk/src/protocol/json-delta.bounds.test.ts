import { describe, expect, it } from "vitest";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { isPatchNotApplicableError } from "./errors.js";
import { applyJsonDelta, canonicalSize, materializeJsonState } from "./json-delta.js";
import { canonicalJson, type JsonValue } from "./json.js";

const PATCH = DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
const MERGE = DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;

/** `[add /a [0], copy /a → /a/- × copies]`: each copy doubles the state. */
function doubling(copies: number): JsonValue {
  return [{ op: "add", path: "/a", value: [0] }, ...Array.from({ length: copies }, () => ({ op: "copy", from: "/a", path: "/a/-" }))];
}

function reasonOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    if (isPatchNotApplicableError(error)) return error.reason;
    throw error;
  }
  return undefined;
}

describe("canonicalSize", () => {
  it.each<[string, JsonValue]>([
    ["empty object", {}],
    ["empty array", []],
    ["scalars", [null, true, false, 0, -0, 1.5, 1e21, -3e-7, "", "a\"b\\c\n\u0001"]],
    ["non-ASCII strings and keys", { "é": "日本", "😀": ["€", "\u007f"], z: { y: [] } }],
    ["nesting", { a: [{ b: [[], {}, [1, [2, [3]]]] }], c: "x" }],
  ])("equals the length of canonicalJson for %s", (_, value) => {
    expect(canonicalSize(value)).toBe(canonicalJson(value).length);
  });

  it("stops early above the given bound", () => {
    const big = Array.from({ length: 100_000 }, (_, i) => i);
    const size = canonicalSize(big, 100);
    expect(size).toBeGreaterThan(100);
    expect(size).toBeLessThan(canonicalJson(big).length);
  });
});

describe("JSON delta bounds (LIMIT-020, LIMIT-021)", () => {
  it("without options applies copies as before", () => {
    const state = applyJsonDelta({}, PATCH, doubling(10));
    expect((state as { a: JsonValue[] }).a).toHaveLength(11);
    expect(canonicalSize(state)).toBeGreaterThan(1024);
  });

  it("stops a self-doubling patch at the copy bound, early and cheaply", () => {
    const started = performance.now();
    expect(reasonOf(() => applyJsonDelta({}, PATCH, doubling(60), { maxCopyBytes: 65_536 }))).toBe("copies-too-large");
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("stops a self-doubling patch at the state bound", () => {
    expect(reasonOf(() => applyJsonDelta({}, PATCH, doubling(60), { maxStateBytes: 65_536 }))).toBe("state-too-large");
  });

  it("accepts a state exactly at the bound and refuses one byte more, for both encodings", () => {
    const value = "x".repeat(100 - '{"s":""}'.length);
    expect(canonicalSize(applyJsonDelta({}, PATCH, [{ op: "add", path: "/s", value }], { maxStateBytes: 100 }))).toBe(100);
    expect(reasonOf(() => applyJsonDelta({}, PATCH, [{ op: "add", path: "/s", value: `${value}x` }], { maxStateBytes: 100 }))).toBe("state-too-large");
    expect(canonicalSize(applyJsonDelta({}, MERGE, { s: value }, { maxStateBytes: 100 }))).toBe(100);
    expect(reasonOf(() => applyJsonDelta({}, MERGE, { s: `${value}x` }, { maxStateBytes: 100 }))).toBe("state-too-large");
  });

  it("lets a patch replace a large member with another of the same size at the bound", () => {
    const value = "x".repeat(100 - '{"s":""}'.length);
    const state = applyJsonDelta({}, PATCH, [{ op: "add", path: "/s", value }], { maxStateBytes: 100 });
    const next = applyJsonDelta(state, PATCH, [{ op: "remove", path: "/s" }, { op: "add", path: "/s", value: value.replaceAll("x", "y") }], { maxStateBytes: 100 });
    expect(canonicalSize(next)).toBe(100);
  });

  it("counts copies across all patches of one call", () => {
    const base = { s: "y".repeat(40) }; // each copy inserts 42 bytes
    const copy = (to: string): JsonValue => [{ op: "copy", from: "/s", path: to }];
    expect(reasonOf(() => materializeJsonState(base, PATCH, [copy("/a"), copy("/b")], { maxCopyBytes: 84 }))).toBeUndefined();
    expect(reasonOf(() => materializeJsonState(base, PATCH, [copy("/a"), copy("/b"), copy("/c")], { maxCopyBytes: 84 }))).toBe("copies-too-large");
  });
});
