// A wide object's member name index (member-names.ts) must always be exactly `Object.keys` of
// the object: the server writes canonical bytes from it, so one name too many or too few would
// be a wrong state under a valid hash. Random edits of objects around the width at which an
// index is made (JSON Patch and Merge Patch, batches that fail and are undone, moves and copies
// of the wide object itself), checked after every application. Seeded, so a failure names its seed.
import { describe, expect, it, vi } from "vitest";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { canonicalJsonText, jsonEquals, type JsonObject, type JsonValue } from "./json.js";
import { canonicalSize } from "./json-delta.js";
import { editJsonState } from "./json-state.js";
import { indexedMemberNames, recordMemberNames, WIDE_OBJECT_MEMBERS } from "./member-names.js";

const PATCH = DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
const MERGE = DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;

function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Names of the wide objects: a few more than the width at which an index is made. */
const NAME_COUNT = WIDE_OBJECT_MEMBERS + 12;
const nameOf = (random: () => number) => {
  const pick = random();
  // Some names that are special to JavaScript objects or to JSON Pointer.
  if (pick < 0.02) return ["__proto__", "constructor", "toString", "", "a/b", "~"][Math.floor(random() * 6)]!;
  return `k${Math.floor(random() * NAME_COUNT)}`;
};
const scalar = (random: () => number): JsonValue => [null, true, 0, "x", -1.5][Math.floor(random() * 5)]!;

/** An object of about `WIDE_OBJECT_MEMBERS` members, give or take `spread`. */
function wideObject(random: () => number, spread: number): JsonObject {
  const object: JsonObject = {};
  const target = WIDE_OBJECT_MEMBERS - spread + Math.floor(random() * 2 * spread);
  for (let i = 0; i < target; i++) Object.defineProperty(object, `k${i}`, { value: scalar(random), writable: true, enumerable: true, configurable: true });
  return object;
}

/** Every object in `value` that has an index, with the path to it. */
function* indexed(value: JsonValue, path = ""): Generator<[string, JsonObject, ReadonlySet<string>]> {
  if (value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) yield* indexed(value[i]!, `${path}/${i}`);
    return;
  }
  const names = indexedMemberNames(value);
  if (names !== undefined) yield [path, value, names];
  for (const key of Object.keys(value)) yield* indexed(value[key]!, `${path}/${key}`);
}

function expectIndexesExact(state: JsonValue, context: string): number {
  let count = 0;
  for (const [path, object, names] of indexed(state)) {
    count++;
    const keys = Object.keys(object);
    expect({ path, size: names.size }, context).toEqual({ path, size: keys.length });
    for (const key of keys) if (!names.has(key)) expect.fail(`${context}: ${path} lacks ${JSON.stringify(key)} in its index`);
  }
  return count;
}

/** A JSON Patch operation aimed mostly at the wide objects `/w` and `/v/0`. */
function randomOperation(random: () => number): JsonValue {
  const where = random() < 0.7 ? "/w" : "/v/0";
  const name = nameOf(random).replaceAll("~", "~0").replaceAll("/", "~1");
  const pick = random();
  if (pick < 0.35) return { op: "add", path: `${where}/${name}`, value: scalar(random) };
  if (pick < 0.6) return { op: "remove", path: `${where}/${name}` };
  if (pick < 0.7) return { op: "replace", path: `${where}/${name}`, value: scalar(random) };
  if (pick < 0.78) return { op: "move", from: `${where}/${name}`, path: `${where === "/w" ? "/v/0" : "/w"}/${nameOf(random)}` };
  if (pick < 0.83) return { op: "copy", from: `${where}/${name}`, path: `${where}/${nameOf(random)}` };
  // The wide object itself moved or copied whole: its index goes with it, a copy has none.
  if (pick < 0.86) return { op: "move", from: "/w", path: "/v/1" };
  if (pick < 0.88) return { op: "move", from: "/v/1", path: "/w" };
  if (pick < 0.9) return { op: "copy", from: "/v/0", path: "/c" };
  return { op: "test", path: `${where}/${name}`, value: scalar(random) };
}

function randomMergePatch(random: () => number): JsonValue {
  const patch: JsonObject = {};
  for (let i = Math.floor(random() * 12); i > 0; i--) Object.defineProperty(patch, nameOf(random), { value: random() < 0.35 ? null : scalar(random), writable: true, enumerable: true, configurable: true });
  const outer: JsonObject = { w: patch };
  if (random() < 0.2) outer["v"] = null;
  return outer;
}

/** Applies random batches to a state with two objects about as wide as an index needs; whether any got one. */
function check(seed: number, encoding: DeltaEncoding, parsed: boolean): boolean {
  const random = createRandom(seed);
  const state: JsonObject = { w: wideObject(random, 6), v: [wideObject(random, 6)] };
  // As the server's sliced parser leaves them: the wide objects come with their names.
  if (parsed) {
    for (const object of [state["w"] as JsonObject, (state["v"] as JsonValue[])[0] as JsonObject]) {
      if (Object.keys(object).length > WIDE_OBJECT_MEMBERS) recordMemberNames(object, new Set(Object.keys(object)));
    }
  }
  const editor = editJsonState(state, canonicalSize(state));
  let sawIndex = false;
  for (let round = 0; round < 10; round++) {
    const patches =
      encoding === PATCH
        ? Array.from({ length: 1 + Math.floor(random() * 2) }, () => Array.from({ length: 1 + Math.floor(random() * 6) }, () => randomOperation(random)))
        : Array.from({ length: 1 + Math.floor(random() * 3) }, () => randomMergePatch(random));
    // Some batches fail at their end, after every edit before it: all of it is undone.
    const failing = random() < 0.25;
    if (failing && encoding === PATCH) (patches.at(-1) as JsonValue[]).push({ op: "test", path: "/w", value: 0 });
    if (failing && encoding === MERGE) patches.push({ w: { big: "x".repeat(200_000) } });
    const size = editor.size;
    const bound = failing && encoding === MERGE ? size + 1000 : random() < 0.15 ? size + Math.floor(random() * 20) : undefined;
    const context = `seed ${seed} round ${round}`;
    const before = failing ? canonicalJsonText(editor.state) : undefined;
    let applied = true;
    try {
      editor.apply(encoding, patches, bound === undefined ? {} : { maxStateBytes: bound });
    } catch (error) {
      if (!(error instanceof Error && "reason" in error)) throw error;
      applied = false;
    }
    expect(applied && failing, `${context}: a batch that must fail was applied`).toBe(false);
    if (before !== undefined) expect(canonicalJsonText(editor.state) === before, `${context}: the failed batch was undone`).toBe(true);
    expect(editor.size, `${context}: size`).toBe(canonicalSize(editor.state));
    if (expectIndexesExact(editor.state, context) > 0) sawIndex = true;
  }
  return sawIndex;
}

describe("a wide object's member name index is exactly Object.keys after every edit", () => {
  it("JSON Patch: adds, removes, moves and copies around the width that makes an index, failed batches undone", { timeout: 120_000 }, () => {
    let indexed = 0;
    for (let seed = 1; seed <= 30; seed++) if (check(seed, PATCH, seed % 2 === 0)) indexed++;
    // Objects this wide are indexed once edited, whether or not they came with one.
    expect(indexed).toBeGreaterThan(15);
  });
  it("JSON Merge Patch: members set and removed, objects replaced, failed batches undone", { timeout: 120_000 }, () => {
    let indexed = 0;
    for (let seed = 1; seed <= 40; seed++) if (check(seed, MERGE, seed % 2 === 0)) indexed++;
    expect(indexed).toBeGreaterThan(15);
  });
  it("counts a wide object's members from its index: a cold edit lists no names", { timeout: 60_000 }, () => {
    const state: JsonObject = {};
    for (let i = 0; i < 300_000; i++) state[`m${i}`] = i;
    const names = new Set(Object.keys(state));
    recordMemberNames(state, names);
    const editor = editJsonState(state, canonicalSize(state));
    editor.apply(MERGE, [{ m1: null, extra: true }]);
    expect(indexedMemberNames(state)).toBe(names);
    expect(names.size).toBe(300_000);
    expect(names.has("m1")).toBe(false);
    expect(names.has("extra")).toBe(true);
    expect(editor.size).toBe(canonicalSize(editor.state));
  });

  it("measures, compares and moves a wide object without listing its names", { timeout: 60_000 }, () => {
    const wide = (skip: number): JsonObject => {
      const object: JsonObject = {};
      for (let i = 0; i < 5 * WIDE_OBJECT_MEMBERS; i++) if (i !== skip) object[`m${i}`] = i % 7;
      recordMemberNames(object, new Set(Object.keys(object)));
      return object;
    };
    const state: JsonObject = { w: wide(-1), deep: [[{ x: 1 }]] };
    const editor = editJsonState(state, canonicalSize(state));
    const other = wide(-1);
    const smaller = wide(5);
    const wideSize = canonicalJsonText(other).length;
    // Object.keys and Object.values both list every name of an object at once.
    let widest = 0;
    const spies = (["keys", "values"] as const).map((name) => {
      const original = Object[name] as (o: object) => unknown[];
      return vi.spyOn(Object, name).mockImplementation(((o: object) => {
        const listed = original(o);
        widest = Math.max(widest, listed.length);
        return listed;
      }) as never);
    });
    try {
      expect(canonicalSize(state["w"]!)).toBe(wideSize);
      expect(jsonEquals(state["w"]!, other)).toBe(true);
      expect(jsonEquals(state["w"]!, smaller)).toBe(false);
      expect(jsonEquals({ m0: 0 }, state["w"]!)).toBe(false);
      // A JSON Patch `test` of the wide object against a small value fails on its count.
      expect(() => editor.apply(PATCH, [[{ op: "test", path: "/w", value: { m0: 0 } }]])).toThrow(/test/);
      // Moves of it to no deeper a place, back and forth: its depth is not measured again.
      const moves = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? { op: "move", from: "/w", path: "/v" } : { op: "move", from: "/v", path: "/w" }));
      editor.apply(PATCH, [moves]);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
    expect(widest).toBeLessThanOrEqual(WIDE_OBJECT_MEMBERS);
    expect(Object.keys(editor.state as JsonObject)).toEqual(["deep", "w"]);
    expect(editor.size).toBe(canonicalSize(editor.state));
    // Moved deeper, it is measured as before (one listing): the nesting bound is still judged.
    editor.apply(PATCH, [[{ op: "move", from: "/w", path: "/deep/0/0/w" }]]);
    expect(editor.size).toBe(canonicalSize(editor.state));
  });
});
