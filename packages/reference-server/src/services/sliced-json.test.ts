import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import {
  applyJsonDelta,
  bytesEqual,
  canonicalJson,
  canonicalSize,
  DiffNotExpressibleError,
  diffJsonStates,
  editJsonState,
  indexedMemberNames,
  jsonEquals,
  MAX_JSON_DEPTH,
  parseJsonDocument,
  recordMemberNames,
  type JsonObject,
  type JsonValue,
} from "@continuity/sdk/protocol";
import { canonicalJsonSliced, checkCanonicalStateSliced, diffJsonStatesSliced, jsonEqualsSliced, parseCanonicalSliced, sortKeysSliced } from "./sliced-json.js";

// The sliced versions must give what the SDK's one-step functions give, on any JSON.
const member = fc.oneof(fc.constantFrom("a", "b", "c", "a/b", "~0", "é", "\u{1f600}"), fc.string({ maxLength: 3 }));
const json = (nulls: boolean) =>
  fc.letrec<{ value: JsonValue }>((tie) => ({
    value: fc.oneof(
      { depthSize: "small" },
      ...(nulls ? [fc.constant(null)] : []),
      fc.boolean(),
      fc.integer({ min: -3, max: 3 }),
      fc.constantFrom("x", "y"),
      fc.array(tie("value"), { maxLength: 4 }),
      fc.dictionary(member.filter((k) => k !== "__proto__"), tie("value"), { maxKeys: 5 }),
    ),
  })).value;
/** A second state that shares most of the first, as a restore's head and target do. */
const pair = (nulls: boolean) => fc.tuple(json(nulls), json(nulls), fc.boolean()).map(([a, b, near]) => [a, near && typeof a === "object" && a !== null && !Array.isArray(a) && typeof b === "object" && b !== null && !Array.isArray(b) ? { ...a, ...b } : b] as const);

describe("sliced JSON work gives the SDK's results", () => {
  it("diffs as JSON Patch: the patch turns the head into the target, and there is none for equal states", async () => {
    await fc.assert(
      fc.asyncProperty(pair(true), async ([from, to]) => {
        const patch = await diffJsonStatesSliced(from, to, "json-patch");
        expect(patch === undefined).toBe(jsonEquals(from, to));
        if (patch !== undefined) expect(jsonEquals(applyJsonDelta(from, continuity.v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH, patch), to)).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it("diffs as JSON Merge Patch between states without null members, and refuses a target a merge patch cannot reach", async () => {
    await fc.assert(
      fc.asyncProperty(pair(false), async ([from, to]) => {
        const patch = await diffJsonStatesSliced(from, to, "json-merge-patch");
        if (patch === undefined) expect(jsonEquals(from, to)).toBe(true);
        else expect(jsonEquals(applyJsonDelta(from, continuity.v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, patch), to)).toBe(true);
      }),
      { numRuns: 400 },
    );
    await expect(diffJsonStatesSliced({}, { a: null }, "json-merge-patch")).rejects.toBeInstanceOf(DiffNotExpressibleError);
    expect(await diffJsonStatesSliced({ a: { b: 1 } }, { a: { b: 1 } }, "json-merge-patch")).toBeUndefined();
    expect(await diffJsonStatesSliced({ a: { b: 1, c: 2 } }, { a: { b: 1 } }, "json-merge-patch")).toEqual({ a: { c: null } });
  });

  it("compares like jsonEquals", async () => {
    await fc.assert(
      fc.asyncProperty(pair(true), async ([a, b]) => {
        expect(await jsonEqualsSliced(a, b)).toBe(jsonEquals(a, b));
      }),
      { numRuns: 300 },
    );
  });

  it("sorts the member names of a very large object by UTF-16 code units, as one sort does", async () => {
    const names = fc.sample(fc.string({ unit: "binary", maxLength: 6 }), 30_000);
    names.push(...Array.from({ length: 10_000 }, (_, i) => `k${(i * 7919) % 10_007}`));
    expect(await sortKeysSliced([...names])).toEqual([...names].sort());
  });

  it("writes and reads canonical JSON of an object of more members than one sort run", async () => {
    const wide: Record<string, JsonValue> = {};
    for (let i = 0; i < 20_000; i++) wide[`m${(i * 7919) % 20_011}\u00e9`] = i % 3 === 0 ? [i, { x: i }] : `v${i}`;
    const value = { wide, other: [wide["m0\u00e9"]!, null] };
    const bytes = await canonicalJsonSliced(value);
    expect(Buffer.from(bytes)).toEqual(Buffer.from(canonicalJson(value)));
    expect(jsonEquals(await parseCanonicalSliced(bytes), value)).toBe(true);
  });

  it("reads runs of members and items across its 128 KiB pieces: names with escapes and digits, members larger than a piece, nested large containers", async () => {
    const names = fc.sample(fc.string({ unit: "binary", maxLength: 5 }).filter((k) => k !== "__proto__"), { numRuns: 25_000, seed: 20261203 });
    const scalar = (i: number): JsonValue => [i, -i / 7, `s${i}"\\\n`, true, null, "\u00e9\u{1f600}"][i % 6]!;
    const wide: Record<string, JsonValue> = {};
    names.forEach((name, i) => (wide[name] = i % 11 === 0 ? { [name]: [scalar(i), {}] } : i % 13 === 0 ? [] : scalar(i)));
    for (const digits of ["0", "7", "10", "123456"]) wide[digits] = digits;
    // Members, and items, each larger than a piece alone: a string, an array and an object.
    wide["long string"] = "x".repeat(200_000);
    wide["long array"] = Array.from({ length: 40_000 }, (_, i) => scalar(i));
    const nested: Record<string, JsonValue> = {};
    for (let i = 0; i < 15_000; i++) nested[`n${i}`] = { deeper: [i, `v${i}`] };
    wide["long object"] = nested;
    const value: JsonValue = [wide, Array.from({ length: 30_000 }, (_, i) => (i % 5000 === 0 ? "y".repeat(140_000) : scalar(i))), [[Array.from({ length: 50_000 }, (_, i) => i)]]];
    const bytes = canonicalJson(value);
    expect(bytes.length).toBeGreaterThan(2_000_000);
    const parsed = await parseCanonicalSliced(bytes);
    expect(jsonEquals(parsed, value)).toBe(true);
    expect(bytesEqual(canonicalJson(parsed), bytes)).toBe(true);
    // Wide objects read in runs still get their member names recorded, exactly.
    const parsedWide = (parsed as JsonValue[])[0] as JsonObject;
    expect([...indexedMemberNames(parsedWide)!].sort()).toEqual(Object.keys(parsedWide).sort());
    expect([...indexedMemberNames(parsedWide["long object"] as JsonObject)!].sort()).toEqual(Object.keys(nested).sort());
    // Cut short, the bytes are refused: by the scan or by the parse of the run the cut falls in.
    await expect(parseCanonicalSliced(Buffer.concat([bytes.subarray(0, 300_000), Buffer.from("]")]))).rejects.toThrow();
  });
});

describe("wide objects' member names come from the index kept beside them", () => {
  const wideBytes = (count: number, skip = -1) => {
    const wide: Record<string, JsonValue> = {};
    for (let i = 0; i < count; i++) if (i !== skip) wide[`m${(i * 7919) % 20_011}`] = i % 3 === 0 ? { x: i } : i;
    return canonicalJson({ a: 1, wide });
  };

  it("the parser records the names, edits keep them, and the sliced results are the SDK's", async () => {
    const state = (await parseCanonicalSliced(wideBytes(9000))) as JsonObject;
    const wide = state["wide"] as JsonObject;
    expect([...indexedMemberNames(wide)!].sort()).toEqual(Object.keys(wide).sort());
    const editor = editJsonState(state, canonicalSize(state));
    editor.apply(continuity.v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, [{ wide: { m0: null, m15838: 5, added: [1] } }]);
    expect(() => editor.apply(continuity.v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, [{ wide: { m7919: null, new: "x".repeat(100) } }], { maxStateBytes: editor.size + 10 })).toThrow();
    expect([...indexedMemberNames(wide)!].sort()).toEqual(Object.keys(wide).sort());
    const bytes = await canonicalJsonSliced(editor.state);
    expect(Buffer.from(bytes)).toEqual(Buffer.from(canonicalJson(editor.state)));
    expect(bytes.length).toBe(editor.size);

    const target = (await parseCanonicalSliced(wideBytes(9000, 3))) as JsonObject;
    expect(await jsonEqualsSliced(editor.state, target)).toBe(false);
    expect(await jsonEqualsSliced(target, (await parseCanonicalSliced(wideBytes(9000, 3))) as JsonValue)).toBe(true);
    const patch = await diffJsonStatesSliced(editor.state, target, "json-patch");
    expect(jsonEquals(applyJsonDelta(editor.state, continuity.v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH, patch!), target)).toBe(true);
    // A merge patch from nothing holds every member: its names are recorded as it is built.
    const merge = (await diffJsonStatesSliced([], target, "json-merge-patch")) as JsonObject;
    const wideMerge = merge["wide"] as JsonObject;
    expect([...indexedMemberNames(wideMerge)!].sort()).toEqual(Object.keys(wideMerge).sort());
    expect(Buffer.from(await canonicalJsonSliced(merge))).toEqual(Buffer.from(canonicalJson(diffJsonStates({}, target, continuity.v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH))));
  });

  it("refuses to write a name the object does not own, and lists the names itself when asked", async () => {
    const state = (await parseCanonicalSliced(wideBytes(5000))) as JsonObject;
    const wide = state["wide"] as JsonObject;
    recordMemberNames(wide, new Set([...Object.keys(wide), "toString"]));
    await expect(canonicalJsonSliced(state)).rejects.toThrow(/not the object's own/);
    expect(Buffer.from(await canonicalJsonSliced(state, "listed"))).toEqual(Buffer.from(canonicalJson(state)));
  });
});

/** What the import checked in one step before: strict parse, then canonical form. */
function checkAtOnce(bytes: Uint8Array): "invalid" | "not-canonical" | undefined {
  let value: JsonValue;
  try {
    value = parseJsonDocument(bytes);
  } catch {
    return "invalid";
  }
  return bytesEqual(canonicalJson(value), bytes) ? undefined : "not-canonical";
}

describe("checking an imported state in slices", () => {
  // Larger than one parsed piece (128 KiB) at the top and one level down, so the checks
  // between pieces run; the variants break each rule once.
  const wide: Record<string, JsonValue> = {};
  for (let i = 0; i < 12_000; i++) wide[`m${String(i).padStart(5, "0")}`] = i % 4 === 0 ? { x: [i, "é"], y: null } : `value ${i}`;
  const text = Buffer.from(canonicalJson({ list: [wide, 1.5, "\u{1f600}"], wide, "é": true })).toString("utf8");
  const at = (find: string) => {
    const index = text.indexOf(find);
    if (index < 0) throw new Error(`${find} is not in the state`);
    return index;
  };
  const splice = (index: number, remove: number, insert: string) => text.slice(0, index) + insert + text.slice(index + remove);
  // The third column is the one-step verdict. Sliced, a problem inside a piece (a member name, a
  // scalar, a small container) gets the same verdict; bytes between pieces that are not the
  // canonical structure are refused as not canonical, broken syntax or valid whitespace alike.
  const variants: [string, string | Uint8Array, "invalid" | "not-canonical" | undefined, ("not-canonical" | "either")?][] = [
    ["the canonical state", text, undefined],
    ["whitespace between members", splice(at(',"m00002"') + 1, 0, " "), "not-canonical"],
    ["whitespace after the first brace", splice(1, 0, "\n"), "not-canonical"],
    ["two members out of order", text.replace('"m00001":"value 1","m00002":"value 2"', '"m00002":"value 2","m00001":"value 1"'), "not-canonical"],
    ["a member twice", text.replace('"m00001":"value 1",', '"m00001":"value 1","m00001":"value 1",'), "invalid"],
    ["the reserved member name", splice(1, 0, '"__proto__":1,'), "invalid"],
    ["a lone surrogate in a member name", text.replace('"m00003"', '"m0000\\ud800"'), "invalid"],
    ["a lone surrogate in a string", text.replace('"value 5"', '"value \\udc00"'), "invalid"],
    ["a number out of range", text.replace('"value 6"', "1e400"), "invalid"],
    ["a number not in canonical form", text.replace('"value 7"', "7.0"), "not-canonical"],
    ["an escape canonical JSON does not use", text.replace('"value 9"', '"value \\u0039"'), "not-canonical"],
    ["a byte-order mark", `\ufeff${text}`, "invalid"],
    ["a byte after the value", `${text} `, "not-canonical"],
    ["a colon missing", text.replace('"wide":{', '"wide"{'), "invalid", "not-canonical"],
    ["a trailing comma", splice(text.length - 1, 0, ","), "invalid", "not-canonical"],
    ["a second value", `${text}{}`, "invalid", "not-canonical"],
    ["nothing", "", "invalid"],
    ["invalid UTF-8 in a string", Buffer.concat([Buffer.from(text.slice(0, at("value 10") + 2)), Buffer.from([0xc3, 0x28]), Buffer.from(text.slice(at("value 10") + 2))]), "invalid"],
  ];
  for (const cut of [1, 2, 1000, 200_000, text.length - 1]) variants.push([`the state cut after ${cut} bytes`, text.slice(0, cut), "invalid", "either"]);

  it("accepts what the one-step check accepts and refuses what it refuses, a problem inside a piece for the same reason", async () => {
    for (const [what, variant, expected, sliced] of variants) {
      const bytes = typeof variant === "string" ? Buffer.from(variant, "utf8") : variant;
      expect(checkAtOnce(bytes), `${what}, at once`).toBe(expected);
      const problem = await checkCanonicalStateSliced(bytes, MAX_JSON_DEPTH);
      expect(problem === undefined, `${what}, in slices: ${problem?.message}`).toBe(expected === undefined);
      // A cut document is refused either way; what the slices say first depends on where it was cut.
      if (sliced !== "either") expect(problem?.kind, `${what}, in slices: ${problem?.message}`).toBe(sliced ?? expected);
    }
  });

  it("counts nesting across pieces, up to the protocol's depth and not one level more", async () => {
    const inner = Buffer.from(canonicalJson({ wide })).toString("utf8");
    const nested = (levels: number) => Buffer.from(`${"[".repeat(levels)}${inner}${"]".repeat(levels)}`);
    // {"wide":{…{"x":[…]}}} is 4 levels deep.
    expect(await checkCanonicalStateSliced(nested(MAX_JSON_DEPTH - 4), MAX_JSON_DEPTH)).toBeUndefined();
    expect(checkAtOnce(nested(MAX_JSON_DEPTH - 4))).toBeUndefined();
    expect((await checkCanonicalStateSliced(nested(MAX_JSON_DEPTH - 3), MAX_JSON_DEPTH))?.kind).toBe("invalid");
    expect(checkAtOnce(nested(MAX_JSON_DEPTH - 3))).toBe("invalid");
  });

  it("accepts and refuses small documents, valid or not, as the one-step check does", async () => {
    await fc.assert(
      fc.asyncProperty(json(true), fc.nat(), fc.constantFrom("", " ", ",", "}", "\"", "\\u0041"), async (value, position, noise) => {
        const canonical = Buffer.from(canonicalJson(value)).toString("utf8");
        const index = position % (canonical.length + 1);
        const bytes = Buffer.from(canonical.slice(0, index) + noise + canonical.slice(index), "utf8");
        expect((await checkCanonicalStateSliced(bytes, MAX_JSON_DEPTH)) === undefined).toBe(checkAtOnce(bytes) === undefined);
      }),
      { numRuns: 300 },
    );
  });
});
