// Property checks over many generated state pairs: whatever the states, the diff must turn one
// into the other after a round trip through canonical bytes. A seeded generator keeps runs
// reproducible, so a failure names its seed.
import { describe, expect, it } from "vitest";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { canonicalJson, canonicalJsonText, parseJsonDocument, type JsonObject, type JsonValue } from "./json.js";
import { applyJsonDelta, diffJsonStates, materializeJsonState } from "./json-delta.js";

const PATCH = DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
const MERGE = DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;

/** mulberry32: a tiny deterministic PRNG. */
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

const NAMES = ["a", "b", "c", "", "é", "\u{1f600}", "~1", "a/b", "constructor", "toString", "0", "-"];
const SCALARS: JsonValue[] = [null, true, false, 0, -1.5, 1e21, 9007199254740992, "", "x", "\u{1f4d8}"];

function randomValue(random: () => number, depth: number, allowNullMembers: boolean): JsonValue {
  const pick = random();
  if (depth <= 0 || pick < 0.45) {
    const scalar = SCALARS[Math.floor(random() * SCALARS.length)]!;
    return scalar;
  }
  if (pick < 0.7) {
    return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth - 1, true));
  }
  const object: JsonObject = {};
  for (let i = Math.floor(random() * 5); i > 0; i--) {
    const value = randomValue(random, depth - 1, allowNullMembers);
    if (value === null && !allowNullMembers) continue;
    object[NAMES[Math.floor(random() * NAMES.length)]!] = value;
  }
  return object;
}

/** Sends a patch through canonical bytes, as a client and server do. */
const overTheWire = (patch: JsonValue) => parseJsonDocument(canonicalJson(patch));

describe("diffJsonStates properties", () => {
  it("JSON Patch: applying the diff to `from` gives `to`, for any pair of states", () => {
    for (let seed = 1; seed <= 400; seed++) {
      const random = createRandom(seed);
      const from = randomValue(random, 4, true);
      const to = randomValue(random, 4, true);
      const diff = overTheWire(diffJsonStates(from, to, PATCH));
      expect(canonicalJsonText(applyJsonDelta(from, PATCH, diff)), `seed ${seed}`).toBe(canonicalJsonText(to));
    }
  });

  it("JSON Patch: a diff asks for none of the work LIMIT-021, LIMIT-023 and LIMIT-024 bound", () => {
    // What `update` sends is such a diff: no copy, no move, array items added and removed only
    // at the end, so no server refuses it for the work it asks for (the SDK guide says so).
    for (let seed = 1; seed <= 2000; seed++) {
      const random = createRandom(seed);
      const from = randomValue(random, 4, true);
      const to = randomValue(random, 4, true);
      const diff = overTheWire(diffJsonStates(from, to, PATCH));
      const bounds = { maxCopyBytes: 0, maxDeeperMoveBytes: 0, maxShiftedItems: 0 };
      expect(canonicalJsonText(applyJsonDelta(from, PATCH, diff, bounds)), `seed ${seed}`).toBe(canonicalJsonText(to));
    }
  });

  it("Merge Patch: the diff between two states reachable by merge patches always exists and works", () => {
    for (let seed = 1; seed <= 400; seed++) {
      const random = createRandom(seed);
      // States reached by applying random merge patches to {} (what a merge-patch stream holds).
      const patchesA = Array.from({ length: 3 }, () => randomValue(random, 3, true));
      const patchesB = Array.from({ length: 3 }, () => randomValue(random, 3, true));
      const from = materializeJsonState({}, MERGE, patchesA);
      const to = materializeJsonState(from, MERGE, patchesB);
      const diff = overTheWire(diffJsonStates(to, from, MERGE));
      expect(canonicalJsonText(applyJsonDelta(to, MERGE, diff)), `seed ${seed}`).toBe(canonicalJsonText(from));
    }
  });

  it("canonical bytes are a fixed point of parse and canonicalize", () => {
    for (let seed = 1; seed <= 400; seed++) {
      const value = randomValue(createRandom(seed), 5, true);
      const bytes = canonicalJson(value);
      expect(canonicalJson(parseJsonDocument(bytes)), `seed ${seed}`).toEqual(bytes);
    }
  });
});
