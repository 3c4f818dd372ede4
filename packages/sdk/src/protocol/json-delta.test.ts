import { describe, expect, it } from "vitest";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { DiffNotExpressibleError, isMalformedPatchError, isPatchNotApplicableError } from "./errors.js";
import { canonicalJsonText, INITIAL_JSON_STATE, parseJsonDocument, type JsonValue } from "./json.js";
import { applyJsonDelta, canonicalDeltaPayload, diffJsonStates, materializeJsonState } from "./json-delta.js";

const PATCH = DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
const MERGE = DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;
const json = (text: string) => JSON.parse(text) as JsonValue;

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

function outcome(state: JsonValue, encoding: DeltaEncoding, patch: JsonValue | Uint8Array): string {
  try {
    return canonicalJsonText(applyJsonDelta(state, encoding, patch));
  } catch (error) {
    if (isMalformedPatchError(error)) return "malformed";
    if (isPatchNotApplicableError(error)) return "not-applicable";
    throw error;
  }
}

describe("JSON Patch: RFC 6902 appendix A", () => {
  it.each([
    ["A.1", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux"}]`, `{"baz":"qux","foo":"bar"}`],
    ["A.2", `{"foo":["bar","baz"]}`, `[{"op":"add","path":"/foo/1","value":"qux"}]`, `{"foo":["bar","qux","baz"]}`],
    ["A.3", `{"baz":"qux","foo":"bar"}`, `[{"op":"remove","path":"/baz"}]`, `{"foo":"bar"}`],
    ["A.4", `{"foo":["bar","qux","baz"]}`, `[{"op":"remove","path":"/foo/1"}]`, `{"foo":["bar","baz"]}`],
    ["A.5", `{"baz":"qux","foo":"bar"}`, `[{"op":"replace","path":"/baz","value":"boo"}]`, `{"baz":"boo","foo":"bar"}`],
    [
      "A.6",
      `{"foo":{"bar":"baz","waldo":"fred"},"qux":{"corge":"grault"}}`,
      `[{"op":"move","from":"/foo/waldo","path":"/qux/thud"}]`,
      `{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}`,
    ],
    ["A.7", `{"foo":["all","grass","cows","eat"]}`, `[{"op":"move","from":"/foo/1","path":"/foo/3"}]`, `{"foo":["all","cows","eat","grass"]}`],
    ["A.8", `{"baz":"qux","foo":["a",2,"c"]}`, `[{"op":"test","path":"/baz","value":"qux"},{"op":"test","path":"/foo/1","value":2}]`, `{"baz":"qux","foo":["a",2,"c"]}`],
    ["A.9", `{"baz":"qux"}`, `[{"op":"test","path":"/baz","value":"bar"}]`, "not-applicable"],
    ["A.10", `{"foo":"bar"}`, `[{"op":"add","path":"/child","value":{"grandchild":{}}}]`, `{"child":{"grandchild":{}},"foo":"bar"}`],
    ["A.11", `{"foo":"bar"}`, `[{"op":"add","path":"/baz","value":"qux","xyz":123}]`, `{"baz":"qux","foo":"bar"}`],
    ["A.12", `{"foo":"bar"}`, `[{"op":"add","path":"/baz/bat","value":"qux"}]`, "not-applicable"],
    ["A.14", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":10}]`, `{"/":9,"~1":10}`],
    ["A.15", `{"/":9,"~1":10}`, `[{"op":"test","path":"/~01","value":"10"}]`, "not-applicable"],
    ["A.16", `{"foo":["bar"]}`, `[{"op":"add","path":"/foo/-","value":["abc","def"]}]`, `{"foo":["bar",["abc","def"]]}`],
  ])("%s", (_name, state, patch, expected) => {
    expect(outcome(json(state), PATCH, json(patch))).toBe(expected);
  });

  it("A.13: a duplicate member in an operation is malformed", () => {
    expect(outcome({}, PATCH, new TextEncoder().encode(`[{"op":"add","path":"/baz","value":"qux","op":"remove"}]`))).toBe("malformed");
  });
});

describe("JSON Patch: the spec's strict rules", () => {
  it.each([
    ["an inherited member does not exist", `{}`, `[{"op":"remove","path":"/toString"}]`, "not-applicable"],
    ["constructor is not a member of {}", `{}`, `[{"op":"test","path":"/constructor","value":null}]`, "not-applicable"],
    ["a leading zero is not an index", `[1,2]`, `[{"op":"remove","path":"/01"}]`, "not-applicable"],
    ["- names no existing element", `[1]`, `[{"op":"replace","path":"/-","value":2}]`, "not-applicable"],
    ["an index may equal the length for add", `[1]`, `[{"op":"add","path":"/1","value":2}]`, "[1,2]"],
    ["an index past the length is refused", `[1]`, `[{"op":"add","path":"/2","value":2}]`, "not-applicable"],
    ["length is not an index", `[1]`, `[{"op":"replace","path":"/length","value":0}]`, "not-applicable"],
    ["stepping into a scalar", `{"a":1}`, `[{"op":"add","path":"/a/b","value":1}]`, "not-applicable"],
    ["add to root replaces the document", `{"a":1}`, `[{"op":"add","path":"","value":[true]}]`, "[true]"],
    ["replace root", `{"a":1}`, `[{"op":"replace","path":"","value":null}]`, "null"],
    ["copy the root into a child", `{"a":1}`, `[{"op":"copy","from":"","path":"/b"}]`, `{"a":1,"b":{"a":1}}`],
    ["move onto itself is a no-op", `{"a":{"b":1}}`, `[{"op":"move","from":"/a","path":"/a"}]`, `{"a":{"b":1}}`],
    ["a member named constructor is ordinary", `{}`, `[{"op":"add","path":"/constructor","value":{"prototype":1}},{"op":"replace","path":"/constructor/prototype","value":2}]`, `{"constructor":{"prototype":2}}`],
    ["the empty member name", `{}`, `[{"op":"add","path":"/","value":1}]`, `{"":1}`],
    ["remove root", `{}`, `[{"op":"remove","path":""}]`, "malformed"],
    ["move into a child", `{"a":{}}`, `[{"op":"move","from":"/a","path":"/a/b"}]`, "malformed"],
    ["a pointer without a leading slash", `{}`, `[{"op":"add","path":"a","value":1}]`, "malformed"],
    ["a bad ~ escape", `{}`, `[{"op":"add","path":"/a~2","value":1}]`, "malformed"],
    ["a missing value", `{}`, `[{"op":"add","path":"/a"}]`, "malformed"],
    ["a missing from", `{}`, `[{"op":"copy","path":"/a"}]`, "malformed"],
    ["an unknown op", `{}`, `[{"op":"increment","path":"/a"}]`, "malformed"],
    ["a non-array patch", `{}`, `{"op":"add","path":"/a","value":1}`, "malformed"],
    ["a __proto__ pointer", `{}`, `[{"op":"add","path":"/__proto__/x","value":1}]`, "malformed"],
    ["a malformed op after an inapplicable one", `{}`, `[{"op":"remove","path":"/nope"},{"op":"nope","path":""}]`, "malformed"],
  ])("%s", (_name, state, patch, expected) => {
    expect(outcome(json(state), PATCH, json(patch))).toBe(expected);
  });

  it("applies all operations or none", () => {
    const state = deepFreeze({ n: 1, list: [1] });
    expect(outcome(state, PATCH, json(`[{"op":"add","path":"/list/-","value":2},{"op":"test","path":"/n","value":2}]`))).toBe("not-applicable");
    expect(state).toEqual({ n: 1, list: [1] });
  });

  it("never mutates its inputs and never aliases patch values", () => {
    const state = deepFreeze(json(`{"a":{"b":[1,2]},"c":"x"}`));
    const patch = deepFreeze(json(`[{"op":"add","path":"/v","value":{"k":[1]}},{"op":"add","path":"/v/k/-","value":2},{"op":"move","from":"/a/b/0","path":"/c"}]`));
    const result = applyJsonDelta(state, PATCH, patch) as { v: { k: number[] } };
    expect(canonicalJsonText(result)).toBe(`{"a":{"b":[2]},"c":1,"v":{"k":[1,2]}}`);
    expect(canonicalJsonText(patch)).toBe(canonicalJsonText(json(`[{"op":"add","path":"/v","value":{"k":[1]}},{"op":"add","path":"/v/k/-","value":2},{"op":"move","from":"/a/b/0","path":"/c"}]`)));
    result.v.k.push(3);
    expect(canonicalJsonText(patch)).not.toContain("3");
  });

  it("does not pollute Object.prototype whatever the patch says", () => {
    for (const path of ["/__proto__/polluted", "/constructor/prototype/polluted"]) {
      expect(["malformed", "not-applicable"]).toContain(outcome({}, PATCH, [{ op: "add", path, value: true }]));
    }
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  it("refuses results nested deeper than the limit", () => {
    const nested = (depth: number) => json("[".repeat(depth) + "]".repeat(depth));
    // {"a":{"b": value}}: the value's outermost container sits at depth 3.
    expect(outcome({ a: {} }, PATCH, [{ op: "add", path: "/a/b", value: nested(254) }])).not.toBe("not-applicable");
    expect(outcome({ a: { b: {} } }, PATCH, [{ op: "add", path: "/a/b/c", value: nested(254) }])).toBe("not-applicable");
    // The patch document itself is bounded too: [{"value": <255 levels>}] is 257 deep.
    expect(outcome({ a: {} }, PATCH, [{ op: "add", path: "/a/b", value: nested(255) }])).toBe("malformed");
    expect(outcome(nested(255), PATCH, [{ op: "copy", from: "", path: "/0" }])).not.toBe("not-applicable");
    expect(outcome(nested(256), PATCH, [{ op: "copy", from: "", path: "/0" }])).toBe("not-applicable");
  });
});

describe("JSON Merge Patch: RFC 7396 appendix A", () => {
  it.each([
    [`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`],
    [`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`],
    [`{"a":"b"}`, `{"a":null}`, `{}`],
    [`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`],
    [`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`],
    [`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`],
    [`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`],
    [`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`],
    [`["a","b"]`, `["c","d"]`, `["c","d"]`],
    [`{"a":"b"}`, `["c"]`, `["c"]`],
    [`{"a":"foo"}`, `null`, `null`],
    [`{"a":"foo"}`, `"bar"`, `"bar"`],
    [`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`],
    [`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`],
    [`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`],
  ])("%s + %s = %s", (state, patch, expected) => {
    expect(outcome(json(state), MERGE, json(patch))).toBe(expected);
  });

  it("treats members named like JavaScript built-ins as data and never mutates inputs", () => {
    const state = deepFreeze(json(`{"x":{"y":1}}`));
    const patch = deepFreeze(json(`{"constructor":1,"prototype":{"a":null,"b":2},"x":{"z":2},"toString":"s"}`));
    expect(outcome(state, MERGE, patch)).toBe(`{"constructor":1,"prototype":{"b":2},"toString":"s","x":{"y":1,"z":2}}`);
  });

  it("refuses a __proto__ member", () => {
    expect(outcome({}, MERGE, new TextEncoder().encode(`{"__proto__":{"polluted":true}}`))).toBe("malformed");
  });
});

describe("materializeJsonState", () => {
  it("equals applying the deltas one by one and leaves the start state alone", () => {
    const patches = [`{"a":1}`, `{"b":[1]}`, `{"a":null}`].map((text) => new TextEncoder().encode(text));
    expect(canonicalJsonText(materializeJsonState(INITIAL_JSON_STATE, MERGE, patches))).toBe(`{"b":[1]}`);
    expect(INITIAL_JSON_STATE).toEqual({});
  });

  it("refuses opaque streams", () => {
    expect(() => applyJsonDelta({}, DeltaEncoding.DELTA_ENCODING_OPAQUE, [])).toThrow(RangeError);
  });
});

describe("diffJsonStates", () => {
  const pairs: [string, string][] = [
    [`{}`, `{}`],
    [`{"a":1}`, `{"a":2,"b":null}`],
    [`{"a":[1,2,3],"b":{"c":"d"}}`, `{"a":[3,1],"b":{"c":"e","f":[null]}}`],
    [`{"a":{"b":{"c":1}}}`, `{"a":{"b":{}}}`],
    [`[1,2,3]`, `[3,2,1,0]`],
    [`{"a":1}`, `[1]`],
    [`[1]`, `"s"`],
    [`null`, `{"a":{"b":1}}`],
    [`{"x~/y":1}`, `{"x~/y":2,"":{}}`],
    [`{"toString":1}`, `{"constructor":2}`],
    [`{"n":[{"m":null}]}`, `{"n":[{"m":null},{"m":1}]}`],
  ];

  it.each(pairs)("JSON Patch from %s to %s", (from, to) => {
    const diff = diffJsonStates(json(from), json(to), PATCH);
    expect(Array.isArray(diff)).toBe(true);
    expect(canonicalJsonText(applyJsonDelta(json(from), PATCH, diff))).toBe(canonicalJsonText(json(to)));
    // The diff must survive the wire: canonical bytes parse back to an equivalent patch.
    const reparsed = parseJsonDocument(new TextEncoder().encode(canonicalJsonText(diff)));
    expect(canonicalJsonText(applyJsonDelta(json(from), PATCH, reparsed))).toBe(canonicalJsonText(json(to)));
  });

  it.each(pairs.filter(([, to]) => !/:null/.test(to)))("Merge Patch from %s to %s", (from, to) => {
    const diff = diffJsonStates(json(from), json(to), MERGE);
    expect(canonicalJsonText(applyJsonDelta(json(from), MERGE, diff))).toBe(canonicalJsonText(json(to)));
  });

  it("is empty for equal states", () => {
    expect(diffJsonStates({ a: [1] }, { a: [1] }, PATCH)).toEqual([]);
    expect(diffJsonStates({ a: [1] }, { a: [1] }, MERGE)).toEqual({});
    // `{}` would turn an array into an object; the no-op for a non-object is the value itself.
    expect(diffJsonStates([1], [1], MERGE)).toEqual([1]);
    expect(diffJsonStates("s", "s", MERGE)).toBe("s");
  });

  it("handles nulls a merge patch can express and refuses the ones it cannot", () => {
    expect(canonicalJsonText(applyJsonDelta({ a: 1 }, MERGE, diffJsonStates({ a: 1 }, { a: [null] }, MERGE)))).toBe(`{"a":[null]}`);
    expect(canonicalJsonText(applyJsonDelta({ e: null, a: 1 }, MERGE, diffJsonStates({ e: null, a: 1 }, { e: null }, MERGE)))).toBe(`{"e":null}`);
    expect(diffJsonStates({}, null, MERGE)).toBeNull();
    expect(() => diffJsonStates({ a: 1 }, { a: null }, MERGE)).toThrow(DiffNotExpressibleError);
    expect(() => diffJsonStates({}, { a: { b: null } }, MERGE)).toThrow(DiffNotExpressibleError);
  });

  it("does not mutate its inputs", () => {
    const from = deepFreeze(json(`{"a":[1,2],"b":{"c":1}}`));
    const to = deepFreeze(json(`{"a":[2],"b":{"d":1}}`));
    diffJsonStates(from, to, PATCH);
    diffJsonStates(from, to, MERGE);
  });
});

describe("canonicalDeltaPayload", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  const text = (value: Uint8Array) => new TextDecoder().decode(value);

  it("canonicalizes JSON payloads and passes opaque bytes through untouched", () => {
    expect(text(canonicalDeltaPayload(PATCH, bytes(` [ {"value": 1.50, "path": "/a", "op": "add"} ] `)))).toBe(`[{"op":"add","path":"/a","value":1.5}]`);
    expect(text(canonicalDeltaPayload(MERGE, bytes(`{"b": null, "a": "\u00e9"}`)))).toBe(`{"a":"é","b":null}`);
    const opaque = Uint8Array.of(0xff, 0x00, 0x20);
    expect(canonicalDeltaPayload(DeltaEncoding.DELTA_ENCODING_OPAQUE, opaque)).toBe(opaque);
  });

  it("refuses malformed JSON and JSON Patches that are malformed whatever the state", () => {
    for (const [encoding, payload] of [
      [MERGE, `{"a":1,"a":2}`],
      [MERGE, `[1,]`],
      [PATCH, `{"op":"add"}`],
      [PATCH, `[{"op":"remove","path":""}]`],
      [PATCH, `[{"op":"copy","path":"/a"}]`],
    ] as const) {
      let failure: unknown;
      try {
        canonicalDeltaPayload(encoding, bytes(payload));
      } catch (error) {
        failure = error;
      }
      expect(isMalformedPatchError(failure), payload).toBe(true);
    }
    // Inapplicable is a question for the state, not for the payload.
    expect(text(canonicalDeltaPayload(PATCH, bytes(`[{"op":"remove","path":"/missing"}]`)))).toBe(`[{"op":"remove","path":"/missing"}]`);
    expect(() => canonicalDeltaPayload(DeltaEncoding.DELTA_ENCODING_UNSPECIFIED, bytes("{}"))).toThrow(RangeError);
  });
});
