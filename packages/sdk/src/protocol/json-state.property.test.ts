// The in-place editor must reach exactly what `materializeJsonState` reaches: the same state,
// the same error reason, the same bounds, with its size kept equal to `canonicalSize`, and a
// failed application must leave the held state as it was. Seeded, so a failure names its seed.
import { describe, expect, it } from "vitest";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { canonicalJsonText, cloneJson, type JsonObject, type JsonValue } from "./json.js";
import { canonicalSize, materializeJsonState, type JsonDeltaOptions } from "./json-delta.js";
import { editJsonState } from "./json-state.js";

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

const NAMES = ["a", "b", "c", "", "é", "\u{1f600}", "~", "a/b", "constructor", "0", "1", "-"];
const SCALARS: JsonValue[] = [null, true, false, 0, -1.5, 1e21, "", "x", "\u{1f4d8}", "yyyyyyyyyyyyyyyyyyyy"];

function randomValue(random: () => number, depth: number): JsonValue {
  const pick = random();
  if (depth <= 0 || pick < 0.4) return SCALARS[Math.floor(random() * SCALARS.length)]!;
  if (pick < 0.65) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth - 1));
  const object: JsonObject = {};
  for (let i = Math.floor(random() * 5); i > 0; i--) object[NAMES[Math.floor(random() * NAMES.length)]!] = randomValue(random, depth - 1);
  return object;
}

/** Pointers into `value` (most of them exist), plus some that do not. */
function randomPointer(random: () => number, value: JsonValue): string {
  const tokens: string[] = [];
  let current: JsonValue | undefined = value;
  while (current !== null && typeof current === "object" && random() < 0.7) {
    const keys: string[] = Array.isArray(current) ? current.map((_, i) => String(i)) : Object.keys(current);
    const extra: readonly string[] = Array.isArray(current) ? ["-", String(current.length), "01"] : NAMES;
    const token: string = random() < 0.8 && keys.length > 0 ? keys[Math.floor(random() * keys.length)]! : extra[Math.floor(random() * extra.length)]!;
    tokens.push(token);
    current = Array.isArray(current) ? current[Number(token)] : (current as JsonObject)[token];
  }
  return tokens.map((t) => `/${t.replaceAll("~", "~0").replaceAll("/", "~1")}`).join("");
}

function randomOperation(random: () => number, state: JsonValue): JsonValue {
  const ops = ["add", "remove", "replace", "move", "copy", "test"] as const;
  const op = ops[Math.floor(random() * ops.length)]!;
  const path = randomPointer(random, state);
  switch (op) {
    case "remove":
      return { op, path: path === "" ? "/a" : path };
    case "move":
    case "copy": {
      const from = randomPointer(random, state) || "/a";
      if (op === "move" && path.startsWith(`${from}/`)) return { op: "test", path, value: 1 };
      return { op, from, path };
    }
    default:
      return { op, path, value: randomValue(random, 3) };
  }
}

type Outcome = { state: string; size: number } | { error: string };

function viaMaterialize(state: JsonValue, encoding: DeltaEncoding, patches: JsonValue[], options: JsonDeltaOptions): Outcome {
  try {
    const next = materializeJsonState(state, encoding, patches, options);
    return { state: canonicalJsonText(next), size: canonicalSize(next) };
  } catch (error) {
    return { error: (error as { reason?: string }).reason ?? String(error) };
  }
}

function check(seed: number, encoding: DeltaEncoding): void {
  const random = createRandom(seed);
  const start = randomValue(random, 4);
  const editor = editJsonState(cloneJson(start), canonicalSize(start));
  let expected = start;
  for (let round = 0; round < 6; round++) {
    const patches =
      encoding === PATCH
        ? Array.from({ length: 1 + Math.floor(random() * 2) }, () => Array.from({ length: 1 + Math.floor(random() * 3) }, () => randomOperation(random, expected)))
        : Array.from({ length: 1 + Math.floor(random() * 2) }, () => randomValue(random, 3));
    const bound = random() < 0.3 ? canonicalSize(expected) + Math.floor(random() * 40) - 10 : undefined;
    const copies = random() < 0.3 ? Math.floor(random() * 60) : undefined;
    const moves = random() < 0.3 ? Math.floor(random() * 60) : undefined;
    const shifts = random() < 0.3 ? Math.floor(random() * 6) : undefined;
    const options: JsonDeltaOptions = {
      ...(bound === undefined ? {} : { maxStateBytes: Math.max(2, bound) }),
      ...(copies === undefined ? {} : { maxCopyBytes: copies }),
      ...(moves === undefined ? {} : { maxDeeperMoveBytes: moves }),
      ...(shifts === undefined ? {} : { maxShiftedItems: shifts }),
    };
    const want = viaMaterialize(expected, encoding, patches, options);
    const before = canonicalJsonText(editor.state);
    let got: Outcome;
    try {
      editor.apply(encoding, patches, options);
      got = { state: canonicalJsonText(editor.state), size: editor.size };
    } catch (error) {
      got = { error: (error as { reason?: string }).reason ?? String(error) };
      expect(canonicalJsonText(editor.state), `seed ${seed} round ${round}: a failed apply leaves the state`).toBe(before);
    }
    expect(got, `seed ${seed} round ${round}: ${JSON.stringify(patches)} on ${before}`).toEqual(want);
    expect(editor.size, `seed ${seed} round ${round}: size`).toBe(canonicalSize(editor.state));
    if ("state" in want) expected = JSON.parse(want.state) as JsonValue;
  }
}

describe("editJsonState reaches what materializeJsonState reaches", () => {
  it("JSON Patch: same states, sizes and errors, undone on failure", () => {
    for (let seed = 1; seed <= 1500; seed++) check(seed, PATCH);
  });
  it("JSON Merge Patch: same states, sizes and errors", () => {
    for (let seed = 1; seed <= 800; seed++) check(seed, MERGE);
  });
  it("keeps the size of a large state without measuring it again", () => {
    const state: JsonObject = {};
    for (let i = 0; i < 200_000; i++) state[`m${i}`] = { t: "x".repeat(20), n: i };
    const editor = editJsonState(state, canonicalSize(state));
    const started = performance.now();
    for (let i = 0; i < 2000; i++) editor.apply(MERGE, [{ [`m${i}`]: { n: -i } }]);
    // Measuring the 6 MB state once takes longer than these 2,000 edits together.
    expect(performance.now() - started).toBeLessThan(2000);
    expect(editor.size).toBe(canonicalSize(editor.state));
  });
});
