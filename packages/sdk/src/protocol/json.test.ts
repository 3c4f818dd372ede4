import { describe, expect, it } from "vitest";
import { isMalformedPatchError, type MalformedReason } from "./errors.js";
import { canonicalJson, canonicalJsonText, cloneJson, INITIAL_JSON_STATE, jsonEquals, MAX_JSON_DEPTH, parseJsonDocument, type JsonValue } from "./json.js";

const text = (value: string) => new TextEncoder().encode(value);
const canonical = (json: string) => new TextDecoder().decode(canonicalJson(parseJsonDocument(text(json))));

function reasonOf(bytes: Uint8Array): MalformedReason | "accepted" {
  try {
    parseJsonDocument(bytes);
    return "accepted";
  } catch (error) {
    if (isMalformedPatchError(error)) return error.reason;
    throw error;
  }
}

describe("canonicalJson (RFC 8785)", () => {
  it("reproduces the RFC 8785 section 3.2.2 example", () => {
    const input = String.raw`{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }`;
    expect(canonical(input)).toBe(String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`);
  });

  it("sorts members by UTF-16 code units as in RFC 8785 section 3.2.3", () => {
    const input = String.raw`{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"\ud83d\ude00":5,"\u0080":6,"\u00f6":7}`;
    // Read the order off the text: Object.keys would move "1" first.
    expect(canonical(input)).toBe('{"\\r":2,"1":4,"\u0080":6,"\u00f6":7,"\u20ac":1,"\ud83d\ude00":5,"\ufb33":3}');
  });

  it.each([
    ["0", "0"],
    ["-0", "0"],
    ["1.0", "1"],
    ["1e21", "1e+21"],
    ["1e20", "100000000000000000000"],
    ["1e-6", "0.000001"],
    ["1e-7", "1e-7"],
    ["9007199254740993", "9007199254740992"],
    ["5e-324", "5e-324"],
    ["1e-400", "0"],
    ["-1.5E+3", "-1500"],
  ])("writes the number %s as %s (ECMAScript Number::toString)", (input, expected) => {
    expect(canonical(input)).toBe(expected);
  });

  it("keeps non-ASCII text as UTF-8 and escapes only what JSON requires", () => {
    expect(canonical(String.raw`"\u00e9e\u0301\ud83d\ude00\u2028\u007f\u001f"`)).toBe('"ée\u0301😀\u2028\u007f\\u001f"');
  });

  it("refuses values that are not JSON instead of dropping them", () => {
    for (const value of [undefined, Number.NaN, Number.POSITIVE_INFINITY, new Date(0), { a: undefined }, [1, undefined], "\ud800", { "\udc00": 1 }, () => 1]) {
      expect(() => canonicalJson(value as JsonValue)).toThrow(TypeError);
    }
    // eslint-disable-next-line no-sparse-arrays
    expect(() => canonicalJson([1, , 2] as JsonValue)).toThrow(TypeError);
  });

  it("treats a member named toJSON as data", () => {
    expect(canonicalJsonText({ toJSON: "x", a: 1 })).toBe('{"a":1,"toJSON":"x"}');
  });
});

describe("parseJsonDocument", () => {
  it("parses documents of every root type", () => {
    expect(parseJsonDocument(text(' {"a": [1, "x", null, true]} '))).toEqual({ a: [1, "x", null, true] });
    expect(parseJsonDocument(text("null"))).toBeNull();
    expect(parseJsonDocument(text('"s"'))).toBe("s");
  });

  it.each([
    ["invalid UTF-8", Uint8Array.of(0x22, 0xc3, 0x22), "invalid-utf8"],
    ["a UTF-8 byte-order mark", Uint8Array.of(0xef, 0xbb, 0xbf, 0x31), "byte-order-mark"],
    ["empty input", new Uint8Array(), "invalid-json"],
    ["two documents", text("1 2"), "invalid-json"],
    ["single quotes", text("{'a':1}"), "invalid-json"],
    ["NaN", text("NaN"), "invalid-json"],
    ["a duplicate member", text('{"a":1,"b":2,"a":3}'), "duplicate-member"],
    ["a duplicate spelled with an escape", text('{"é":1,"\\u00e9":2}'), "duplicate-member"],
    ["a nested duplicate", text('[{"x":{"k":1,"k":1}}]'), "duplicate-member"],
    ["a lone high surrogate", text('"\\ud83d"'), "lone-surrogate"],
    ["a lone low surrogate in a name", text('{"\\ude00":1}'), "lone-surrogate"],
    ["an overflowing number", text("-1e309"), "number-out-of-range"],
    ["__proto__", text('{"__proto__":1}'), "reserved-member-name"],
  ] as const)("refuses %s", (_what, bytes, reason) => {
    expect(reasonOf(bytes)).toBe(reason);
  });

  it("is not fooled by quotes, braces and commas inside strings", () => {
    expect(reasonOf(text('{"a":"}\\",{\\"a\\":","b":["{","a"],"c":{"a":1}}'))).toBe("accepted");
    expect(reasonOf(text('{"a":{"x":1},"b":{"x":1}}'))).toBe("accepted");
    expect(reasonOf(text('{"x":["a","a"],"y":"a"}'))).toBe("accepted");
  });

  it("finds duplicate names, and only those, whatever escapes the names and strings around them hold", () => {
    // Names and strings of characters a scanner for string ends can trip on, each written plainly
    // or all as \u escapes: the verdict must be the duplicates of the decoded names. Seeded.
    let seed = 0x2545f491;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    const UNITS = ["a", "b", "\\", '"', "/", "\u00e9", "\u{1f600}", "\n"];
    const str = () => Array.from({ length: Math.floor(random() * 4) }, () => UNITS[Math.floor(random() * UNITS.length)]!).join("");
    const spelled = (value: string) =>
      random() < 0.5 ? JSON.stringify(value) : `"${Array.from(value.split(""), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`).join("")}"`;
    const doc = (depth: number): { json: string; duplicate: boolean } => {
      const pick = random();
      if (depth === 0 || pick < 0.3) return { json: spelled(str()), duplicate: false };
      if (pick < 0.5) {
        const items = Array.from({ length: Math.floor(random() * 3) }, () => doc(depth - 1));
        return { json: `[${items.map((d) => d.json).join(",")}]`, duplicate: items.some((d) => d.duplicate) };
      }
      const members = Array.from({ length: Math.floor(random() * 4) }, () => ({ name: str(), value: doc(depth - 1) }));
      return {
        json: `{${members.map(({ name, value }) => `${spelled(name)}:${value.json}`).join(",")}}`,
        duplicate: new Set(members.map((m) => m.name)).size < members.length || members.some((m) => m.value.duplicate),
      };
    };
    let duplicates = 0;
    for (let run = 0; run < 3000; run++) {
      const { json, duplicate } = doc(4);
      if (duplicate) duplicates++;
      expect({ json, reason: reasonOf(text(json)) }).toEqual({ json, reason: duplicate ? "duplicate-member" : "accepted" });
    }
    expect(duplicates).toBeGreaterThan(300);
  });

  it("names where a problem is, as a JSON Pointer", () => {
    expect(() => parseJsonDocument(text('{"a/b":[0,{"~x":"\\ud800"}]}'))).toThrow('string at "/a~1b/1/~0x" contains a lone surrogate');
    expect(() => parseJsonDocument(text('[{"ok":1},{"__proto__":1}]'))).toThrow('member name "__proto__" is reserved (at "/1/__proto__")');
  });

  it(`accepts ${MAX_JSON_DEPTH} levels of nesting and refuses one more`, () => {
    expect(reasonOf(text("[".repeat(MAX_JSON_DEPTH) + "]".repeat(MAX_JSON_DEPTH)))).toBe("accepted");
    expect(reasonOf(text("[".repeat(MAX_JSON_DEPTH + 1) + "]".repeat(MAX_JSON_DEPTH + 1)))).toBe("too-deep");
    expect(reasonOf(text('{"a":'.repeat(MAX_JSON_DEPTH + 1) + "1" + "}".repeat(MAX_JSON_DEPTH + 1)))).toBe("too-deep");
  });

  it("survives hostile nesting far beyond the limit without a stack overflow", () => {
    expect(reasonOf(text("[".repeat(200_000)))).not.toBe("accepted");
    expect(reasonOf(text("[".repeat(100_000) + "]".repeat(100_000)))).toBe("too-deep");
    expect(reasonOf(text('{"a":'.repeat(50_000) + "1" + "}".repeat(50_000)))).toBe("too-deep");
  });
});

describe("helpers", () => {
  it("INITIAL_JSON_STATE is an empty, frozen object", () => {
    expect(INITIAL_JSON_STATE).toEqual({});
    expect(Object.isFrozen(INITIAL_JSON_STATE)).toBe(true);
  });

  it("jsonEquals follows JSON, not JavaScript identity", () => {
    expect(jsonEquals({ a: [1, { b: null }] }, { a: [1, { b: null }] })).toBe(true);
    expect(jsonEquals({ a: 1, b: 2 }, { b: 2, a: 1 })).toBe(true);
    expect(jsonEquals([1, 2], [2, 1])).toBe(false);
    expect(jsonEquals({ a: 1 }, { a: 1, b: undefined } as unknown as JsonValue)).toBe(false);
    expect(jsonEquals("1", 1)).toBe(false);
    expect(jsonEquals({}, [])).toBe(false);
    expect(jsonEquals(null, {})).toBe(false);
  });

  it("cloneJson copies deeply", () => {
    const original = { a: [{ b: 1 }] };
    const copy = cloneJson(original);
    expect(copy).toEqual(original);
    expect(copy.a).not.toBe(original.a);
    expect(copy.a[0]).not.toBe(original.a[0]);
  });
});
