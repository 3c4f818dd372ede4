// Known answers from the RFCs, independent of the committed vectors, so that the suite's own
// implementation is checked against something neither implementation produced.
import { describe, expect, it } from "vitest";
import { applyJsonPatch, applyMergePatch, canonicalJson, parseStrictJson, PatchFailure, StrictJsonError } from "./index.js";

const utf8 = (text: string) => new TextEncoder().encode(text);
const canonical = (text: string) => Buffer.from(canonicalJson(parseStrictJson(utf8(text)))).toString("utf8");

function failureOf(bytes: Uint8Array): string {
  try {
    parseStrictJson(bytes);
    return "accepted";
  } catch (error) {
    if (error instanceof StrictJsonError) return error.failure;
    throw error;
  }
}

describe("canonical JSON", () => {
  it("matches the RFC 8785 section 3.2.2 example", () => {
    const input = String.raw`{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001], "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/", "literals": [null, true, false]}`;
    expect(canonical(input)).toBe(String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`);
  });

  it("sorts by UTF-16 code units (RFC 8785 section 3.2.3)", () => {
    const input = String.raw`{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}`;
    expect(canonical(input)).toBe('{"\\r":2,"1":4,"\u0080":6,"\u00f6":7,"\u20ac":1,"\ud83d\ude00":5,"\ufb33":3}');
  });

  it("sorts the members of objects that have a toJSON member", () => {
    expect(canonical(`{"toJSON":1,"b":{"toJSON":null,"a":[{"z":1,"y":2}]},"a":0}`)).toBe(`{"a":0,"b":{"a":[{"y":2,"z":1}],"toJSON":null},"toJSON":1}`);
  });

  it("refuses lone surrogates instead of escaping them", () => {
    expect(() => canonicalJson({ a: "\ud800" })).toThrow(TypeError);
    expect(() => canonicalJson(["\udfff"])).toThrow(TypeError);
  });
});

describe("strict parser", () => {
  it.each([
    ['{"a":1,"a":1}', "duplicate-member"],
    ['{"a":{"b":1},"c":{"b":1}}', "accepted"],
    ['"\\ud800\\u0041"', "lone-surrogate"],
    ['"\\ud83d\\ude00"', "accepted"],
    ["[01]", "invalid-json"],
    ["[1.]", "invalid-json"],
    ['"tab\there"', "invalid-json"],
    ["[1e999]", "number-out-of-range"],
    ["tru", "invalid-json"],
    [" [ ] ", "accepted"],
    ['{"__proto__":null}', "reserved-member-name"],
  ])("%s -> %s", (text, expected) => {
    expect(failureOf(utf8(text))).toBe(expected);
  });
});

describe("patch appliers", () => {
  it("follow RFC 6902 appendix A.7 and A.14", () => {
    expect(applyJsonPatch({ foo: ["all", "grass", "cows", "eat"] }, [{ op: "move", from: "/foo/1", path: "/foo/3" }])).toEqual({ foo: ["all", "cows", "eat", "grass"] });
    expect(applyJsonPatch({ "/": 9, "~1": 10 }, [{ op: "test", path: "/~01", value: 10 }])).toEqual({ "/": 9, "~1": 10 });
    expect(() => applyJsonPatch({}, [{ op: "remove", path: "/toString" }])).toThrow(PatchFailure);
  });

  it("follow RFC 7396 appendix A", () => {
    expect(applyMergePatch({ a: { b: "c" } }, { a: { b: "d", c: null } })).toEqual({ a: { b: "d" } });
    expect(applyMergePatch([1, 2], { a: "b", c: null })).toEqual({ a: "b" });
    expect(applyMergePatch({}, { a: { bb: { ccc: null } } })).toEqual({ a: { bb: {} } });
  });
});
