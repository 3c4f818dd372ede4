import { describe, expect, it } from "vitest";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { isPatchNotApplicableError } from "./errors.js";
import { applyJsonDelta, canonicalSize, materializeJsonState, type JsonDeltaOptions } from "./json-delta.js";
import { editJsonState } from "./json-state.js";
import { canonicalJson, cloneJson, type JsonValue } from "./json.js";

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

/** The verdict of both appliers, which must agree: the copying one and the in-place editor. */
function bothReasons(state: JsonValue, patches: JsonValue[], options: JsonDeltaOptions): string | undefined {
  const copying = reasonOf(() => materializeJsonState(state, PATCH, patches, options));
  const editor = editJsonState(cloneJson(state), canonicalSize(state));
  const before = canonicalJson(editor.state);
  const inPlace = reasonOf(() => editor.apply(PATCH, patches, options));
  expect(inPlace, "the editor's verdict").toBe(copying);
  if (inPlace !== undefined) expect(canonicalJson(editor.state), "a refused patch leaves the held state").toEqual(before);
  return copying;
}

describe("JSON Patch work bounds (LIMIT-023, LIMIT-024)", () => {
  const big = { a: { list: Array.from({ length: 50 }, (_, i) => `item ${i}`) }, b: {} };
  const moveSize = canonicalSize(big.a); // what moving /a one level deeper carries

  it("counts the bytes of values moved to deeper places, across the patches of one call", () => {
    const down = { op: "move", from: "/a", path: "/b/a" };
    const up = { op: "move", from: "/b/a", path: "/a" };
    expect(bothReasons(big, [[down, up, down, up, down]], { maxDeeperMoveBytes: 2 * moveSize })).toBe("moves-too-large");
    expect(bothReasons(big, [[down, up], [down]], { maxDeeperMoveBytes: 2 * moveSize - 1 })).toBe("moves-too-large");
    expect(bothReasons(big, [[down, up], [down]], { maxDeeperMoveBytes: 2 * moveSize })).toBeUndefined();
    // Moves to places no deeper (`up`, and a move beside itself) count nothing.
    expect(bothReasons(big, [[down, up, { op: "move", from: "/a", path: "/c" }, { op: "move", from: "/c", path: "/a" }]], { maxDeeperMoveBytes: moveSize })).toBeUndefined();
    // Copies have their own bound: a copy of /a is not a move.
    expect(bothReasons(big, [[{ op: "copy", from: "/a", path: "/b/c" }, down]], { maxDeeperMoveBytes: moveSize, maxCopyBytes: moveSize })).toBeUndefined();
  });

  it("counts the array items that insertions and removals by index shift", () => {
    const list = { l: [0, 1, 2, 3, 4] };
    // Removing index 0 of 5 shifts 4; adding at 0 of 4 shifts 4; the end and "-" shift none.
    expect(bothReasons(list, [[{ op: "remove", path: "/l/0" }, { op: "add", path: "/l/0", value: 9 }]], { maxShiftedItems: 8 })).toBeUndefined();
    expect(bothReasons(list, [[{ op: "remove", path: "/l/0" }, { op: "add", path: "/l/0", value: 9 }]], { maxShiftedItems: 7 })).toBe("shifts-too-large");
    expect(bothReasons(list, [[{ op: "remove", path: "/l/4" }, { op: "add", path: "/l/-", value: 9 }, { op: "add", path: "/l/5", value: 9 }]], { maxShiftedItems: 0 })).toBeUndefined();
    // A move within the array shifts for its removal and for its insertion: 3 + 1.
    expect(bothReasons(list, [[{ op: "move", from: "/l/1", path: "/l/3" }]], { maxShiftedItems: 4 })).toBeUndefined();
    expect(bothReasons(list, [[{ op: "move", from: "/l/1", path: "/l/3" }]], { maxShiftedItems: 3 })).toBe("shifts-too-large");
    // A copy into an index shifts like an add; replace shifts nothing. Counted across patches.
    expect(bothReasons(list, [[{ op: "copy", from: "/l/0", path: "/l/3" }], [{ op: "replace", path: "/l/0", value: 1 }]], { maxShiftedItems: 2 })).toBeUndefined();
    expect(bothReasons(list, [[{ op: "copy", from: "/l/0", path: "/l/3" }], [{ op: "add", path: "/l/5", value: 1 }]], { maxShiftedItems: 2 })).toBe("shifts-too-large");
  });

  it("applyGroups judges each group apart and stops once the groups applied used more than one group's bounds", () => {
    const editor = editJsonState({ l: [0, 1, 2, 3, 4] }, canonicalSize({ l: [0, 1, 2, 3, 4] }));
    // Each group removes the first item and adds it back at the front: 4 + 4 shifts.
    const group = (): JsonValue[] => [[{ op: "remove", path: "/l/0" }, { op: "add", path: "/l/0", value: 7 }]];
    // Groups of 8 shifts each under a bound of 8: each fits; after one the call has used its
    // bound (not more), after two it has used more, so the third waits for another call.
    expect(editor.applyGroups(PATCH, [group(), group(), group(), group(), group()], { maxShiftedItems: 8 })).toBe(2);
    expect(editor.state).toEqual({ l: [7, 1, 2, 3, 4] });
    expect(editor.applyGroups(PATCH, [group(), group()], {})).toBe(2);
    // A group over the bound is refused whole, and with it the call's earlier groups.
    const over: JsonValue[] = [[{ op: "remove", path: "/l/0" }, { op: "remove", path: "/l/0" }, { op: "remove", path: "/l/0" }]];
    expect(reasonOf(() => editor.applyGroups(PATCH, [[[{ op: "replace", path: "/l/1", value: 9 }]], over], { maxShiftedItems: 8 }))).toBe("shifts-too-large");
    expect(editor.state).toEqual({ l: [7, 1, 2, 3, 4] });
  });

  it("refuses a small patch of many front removals from a long array early, whatever its length", () => {
    const long = { l: Array.from({ length: 1_000_000 }, (_, i) => ({ i })) };
    const removals = Array.from({ length: 8_000 }, () => ({ op: "remove", path: "/l/0" }));
    const editor = editJsonState(long, canonicalSize(long));
    const started = performance.now();
    // Unbounded, these 8,000 removals shift 8 × 10^9 items (several seconds); bounded, the
    // patch stops after the few that fit and its undo puts them back.
    expect(reasonOf(() => editor.apply(PATCH, [removals], { maxShiftedItems: 4_000_000 }))).toBe("shifts-too-large");
    expect(performance.now() - started).toBeLessThan(1000);
    expect((editor.state as { l: unknown[] }).l).toHaveLength(1_000_000);
  });

  it("refuses moving a large value deeper and back again before walking it more than the bound", () => {
    const wide: Record<string, JsonValue> = {};
    for (let i = 0; i < 200_000; i++) wide[`k${i}`] = [i];
    const state = { a: wide, c: {} };
    const editor = editJsonState(state, canonicalSize(state));
    const pairs = Array.from({ length: 500 }, () => [{ op: "move", from: "/a", path: "/c/a" }, { op: "move", from: "/c/a", path: "/a" }]).flat();
    const started = performance.now();
    expect(reasonOf(() => editor.apply(PATCH, [pairs], { maxDeeperMoveBytes: 262_144 }))).toBe("moves-too-large");
    expect(performance.now() - started).toBeLessThan(1000);
    expect(Object.hasOwn(editor.state as object, "a")).toBe(true);
  });
});
