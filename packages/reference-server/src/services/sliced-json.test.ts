import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { applyJsonDelta, canonicalJson, DiffNotExpressibleError, jsonEquals, type JsonValue } from "@continuity/sdk/protocol";
import { canonicalJsonSliced, diffJsonStatesSliced, jsonEqualsSliced, parseCanonicalSliced, sortKeysSliced } from "./sliced-json.js";

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
});
