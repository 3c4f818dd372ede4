/**
 * Generates the Continuity v1 hashing test vectors (see README.md).
 *
 *   node --conditions=source --import tsx conformance/vectors/generate.ts          # rewrite the files
 *   node --conditions=source --import tsx conformance/vectors/generate.ts --check  # fail if they differ
 *
 * The committed JSON files are the source of truth: this script only produced them, using the
 * SDK implementation, and `--check` proves it still agrees with them. Both the SDK tests and
 * the conformance suite's independent implementation verify every vector byte for byte.
 * Inputs are fixed literals or derived from a fixed counter, so runs are reproducible.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  applyJsonDelta,
  canonicalDeltaPayload,
  canonicalJson,
  checkpointDigest,
  checkpointPreimage,
  deltaHash,
  deltaPreimage,
  genesisHash,
  genesisPreimage,
  INITIAL_JSON_STATE,
  isMalformedPatchError,
  isPatchNotApplicableError,
  MAX_RESUME_PAYLOAD_BYTES,
  parseJsonDocument,
  resumePayloadBytes,
  snapshotHash,
  snapshotPreimage,
  toHex,
  type JsonValue,
} from "@continuity/sdk/protocol";
import { continuity } from "@continuity/sdk/gen";

const { DeltaEncoding } = continuity.v1;
type Encoding = continuity.v1.DeltaEncoding;
type Resume = continuity.v1.ResumePayload;

const here = dirname(fileURLToPath(import.meta.url));
const utf8 = (text: string) => new TextEncoder().encode(text);
const hexOfText = (text: string) => toHex(utf8(text));
const textOf = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

const UID_A = "0190f3a4-6c1e-7d2b-9a8f-3e5d4c2b1a00";
const UID_B = "0190f3a4-6c1e-7d2b-9a8f-3e5d4c2b1a01";
const UID_C = "7f000000-0000-4000-8000-000000000000";
const UID_D = "00000000-0000-4000-8000-00000000000f";

function genesisVector(id: string, description: string, uid: string, type: string, encoding: Encoding) {
  const input = { uid, type, encoding };
  return { id, description, input, preimageHex: toHex(genesisPreimage(input)), hashHex: toHex(genesisHash(input)) };
}

/** One delta: the client's bytes, the canonical bytes the server stores, the preimage and the hash. */
function deltaStep(prevHash: Uint8Array, version: bigint, encoding: Encoding, clientPayload: Uint8Array) {
  const payload = canonicalDeltaPayload(encoding, clientPayload);
  const input = { prevHash, version, encoding, payload };
  return {
    version: version.toString(),
    clientPayloadHex: toHex(clientPayload),
    payloadHex: toHex(payload),
    prevHashHex: toHex(prevHash),
    preimageHex: toHex(deltaPreimage(input)),
    hashHex: toHex(deltaHash(input)),
  };
}

function deltaVector(id: string, description: string, encoding: Encoding, clientPayload: Uint8Array, version = 1n) {
  const stream = { uid: UID_A, type: "org.example.course-progress", encoding }; // version 1 follows the genesis vectors
  const prevHash = version === 1n ? genesisHash(stream) : fromSeed(`prev-of-${id}`);
  const step = deltaStep(prevHash, version, encoding, clientPayload);
  const { preimageHex, hashHex, ...input } = step;
  return { id, description, input: { encoding, ...input }, payloadText: encoding === O ? undefined : textOf(utf8Safe(step.payloadHex)), preimageHex, hashHex };
}

function utf8Safe(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (pair) => Number.parseInt(pair, 16));
}

/** A deterministic 32-byte value for inputs that only need to be some hash. */
function fromSeed(seed: string): Uint8Array {
  return genesisHash({ uid: UID_D, type: seed, encoding: DeltaEncoding.DELTA_ENCODING_OPAQUE });
}

function chainVector(id: string, description: string, uid: string, type: string, encoding: Encoding, payloads: Uint8Array[]) {
  const genesis = genesisHash({ uid, type, encoding });
  let prevHash = genesis;
  let state: JsonValue = INITIAL_JSON_STATE;
  const steps = payloads.map((clientPayload, index) => {
    const step = deltaStep(prevHash, BigInt(index + 1), encoding, clientPayload);
    prevHash = utf8Safe(step.hashHex);
    if (encoding === DeltaEncoding.DELTA_ENCODING_OPAQUE) return step;
    state = applyJsonDelta(state, encoding, clientPayload);
    // Long chains list the state every 25 steps and at the head, to keep the file small.
    const version = index + 1;
    if (payloads.length > 10 && version % 25 !== 0 && version !== payloads.length) return step;
    return { ...step, stateHex: toHex(canonicalJson(state)) };
  });
  return {
    id,
    description,
    stream: { uid, type, encoding },
    genesisHashHex: toHex(genesis),
    steps,
    headVersion: String(payloads.length),
    headHashHex: toHex(prevHash),
  };
}

function snapshotVector(id: string, description: string, input: { streamUid: string; version: bigint; headHash: Uint8Array; encoding: Encoding; state: Uint8Array }) {
  return {
    id,
    description,
    input: {
      streamUid: input.streamUid,
      version: input.version.toString(),
      headHashHex: toHex(input.headHash),
      encoding: input.encoding,
      stateHex: toHex(input.state),
    },
    preimageHex: toHex(snapshotPreimage(input)),
    hashHex: toHex(snapshotHash(input)),
  };
}

function resumeVector(id: string, description: string, resume: Partial<Resume> | undefined) {
  const bytes = resumePayloadBytes(resume);
  return {
    id,
    description,
    input: resume ?? null,
    canonicalHex: toHex(bytes),
    canonicalText: textOf(bytes),
    byteLength: bytes.length,
    withinLimit: bytes.length <= MAX_RESUME_PAYLOAD_BYTES,
  };
}

function checkpointVector(id: string, description: string, entries: { streamUid: string; version: bigint; headHash: Uint8Array }[], resume: Partial<Resume>) {
  const input = { entries, resume };
  return {
    id,
    description,
    input: {
      entries: entries.map((entry) => ({ streamUid: entry.streamUid, version: entry.version.toString(), headHashHex: toHex(entry.headHash) })),
      resume,
    },
    resumeHex: toHex(resumePayloadBytes(resume)),
    preimageHex: toHex(checkpointPreimage(input)),
    digestHex: toHex(checkpointDigest(input)),
  };
}

function canonicalVector(id: string, description: string, inputText: string) {
  const bytes = canonicalJson(parseJsonDocument(utf8(inputText)));
  return { id, description, inputHex: hexOfText(inputText), canonicalHex: toHex(bytes), canonicalText: textOf(bytes) };
}

function malformedVector(id: string, description: string, input: Uint8Array) {
  try {
    parseJsonDocument(input);
  } catch (error) {
    if (isMalformedPatchError(error)) return { id, description, inputHex: toHex(input), reason: error.reason };
    throw error;
  }
  throw new Error(`vector ${id} was accepted`);
}

type Outcome = "applied" | "not-applicable" | "malformed";

function materializeVector(id: string, description: string, encoding: Encoding, initialText: string, patches: string[], expect: Outcome = "applied") {
  const initialStateHex = toHex(canonicalJson(parseJsonDocument(utf8(initialText))));
  let state = parseJsonDocument(utf8(initialText));
  const steps: { patchHex: string; stateHex: string }[] = [];
  for (const [index, patch] of patches.entries()) {
    try {
      state = applyJsonDelta(state, encoding, utf8(patch));
      steps.push({ patchHex: hexOfText(patch), stateHex: toHex(canonicalJson(state)) });
    } catch (error) {
      const outcome = isMalformedPatchError(error) ? "malformed" : isPatchNotApplicableError(error) ? "not-applicable" : undefined;
      if (outcome === undefined || outcome !== expect || index !== patches.length - 1) throw error;
      return { id, description, encoding, initialStateHex, steps, failing: { patchHex: hexOfText(patch), outcome } };
    }
  }
  if (expect !== "applied") throw new Error(`vector ${id} applied but expected ${expect}`);
  return { id, description, encoding, initialStateHex, steps, finalStateText: textOf(canonicalJson(state)) };
}

// ------------------------------------------------------------------------------------------
const P = DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
const M = DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;
const O = DeltaEncoding.DELTA_ENCODING_OPAQUE;

const genesis = [
  genesisVector("genesis-json-patch", "Genesis of a JSON Patch stream.", UID_A, "org.example.course-progress", P),
  genesisVector("genesis-merge-patch", "Genesis of a JSON Merge Patch stream.", UID_A, "org.example.course-progress", M),
  genesisVector("genesis-opaque", "Genesis of an opaque stream; same uid and type as above, so only the encoding byte differs.", UID_A, "org.example.course-progress", O),
  genesisVector("genesis-long-type", "A 128-character type name (the maximum the proto allows).", UID_B, `org.example.${"x".repeat(116)}`, P),
];

const numbersDoc = `[0, -0, 1, -1, 0.5, 1e21, 1e-7, 1E+2, 123e-2, 9007199254740991, 9007199254740993, 18446744073709551615, 4.35, 0.000001, 1e-6, 5e-324, 1.7976931348623157e308, 3.0, 100000000000000000000, 0.1]`;
const unicodeDoc = `{"e\\u0301": "combining acute after e", "\\u00e9": "precomposed e-acute", "emoji": "\\ud83d\\ude00 \u{1f600}", "ctrl": "\\u0000\\u001f\\t\\n\\r\\b\\f", "quote": "\\"\\\\\\/", "line-sep": "\\u2028\\u2029", "del": "\\u007f", "nonbmp-key-\u{10ffff}": "max scalar"}`;
const keyOrderDoc = `{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control", "\\u00f6": "Latin Small Letter O With Diaeresis", "a": {"b": 1, "A": 2, "aa": 3, "": 4}}`;

const delta = [
  deltaVector("delta-json-patch-v1", "First delta of a JSON Patch stream; the client sent whitespace and unsorted members, the payload is canonical.", P, utf8(`[ { "path": "/lesson", "op": "add", "value": 4 } ]`)),
  deltaVector("delta-merge-patch-v1", "First delta of a Merge Patch stream.", M, utf8(`{"position": {"t": 312.5}, "done": null}`)),
  deltaVector("delta-json-patch-empty", "An empty JSON Patch: valid, changes nothing, still a delta.", P, utf8(`[]`)),
  deltaVector("delta-merge-patch-empty", "An empty merge patch.", M, utf8(`{}`)),
  deltaVector("delta-opaque-bytes", "Opaque payload with 0x00 and 0xff bytes; hashed exactly as sent.", O, Uint8Array.of(0x00, 0xff, 0x00, 0x01, 0xfe, 0x7f, 0x80, 0xff)),
  deltaVector("delta-opaque-empty", "An empty opaque payload: length prefix 0 and nothing after it.", O, new Uint8Array()),
  deltaVector("delta-unicode", "Non-BMP characters, combining marks, control characters and escapes in a merge patch.", M, utf8(unicodeDoc)),
  deltaVector("delta-numbers", "Number formatting: integers, exponents, -0, values beyond 2^53 (rounded to the nearest double), the smallest subnormal.", P, utf8(`[{"op": "add", "path": "/n", "value": ${numbersDoc}}]`)),
  deltaVector("delta-key-order", "Members sorted by UTF-16 code units (RFC 8785 example keys) and nested objects sorted too.", M, utf8(keyOrderDoc)),
  deltaVector("delta-max-version", "Version 2^64 - 1 (the largest uint64); prev_hash is an arbitrary 32-byte value.", O, Uint8Array.of(0x2a), (1n << 64n) - 1n),
];

// `count` tracks how many deltas came before; a `test` every tenth delta proves the state was
// materialized in order.
const longChainPayloads = Array.from({ length: 200 }, (_, index) => {
  const n = index + 1;
  if (n === 1) return utf8(`[{"op":"add","path":"/items","value":[]},{"op":"add","path":"/count","value":0}]`);
  if (n % 10 === 0) return utf8(`[{"op":"test","path":"/count","value":${n - 2}},{"op":"remove","path":"/items/0"},{"op":"replace","path":"/count","value":${n - 1}}]`);
  return utf8(`[{"op":"add","path":"/items/-","value":{"n":${n},"label":"item ${n} \u00b7 \u{1f4d8}"}},{"op":"replace","path":"/count","value":${n - 1}}]`);
});

const chain = [
  chainVector("chain-json-patch-200", "200 JSON Patch deltas: appends, a test/remove every tenth delta; the state is given after every 25th step and at the head.", UID_A, "org.example.reading-list", P, longChainPayloads),
  chainVector("chain-merge-patch-5", "Five merge patches, including member deletion and array replacement.", UID_B, "org.example.reading-position", M, [
    `{"book": "urn:isbn:9780140449136", "page": 1}`,
    `{"page": 17, "highlights": ["p3", "p9"]}`,
    `{"highlights": ["p3"], "note": {"text": "caf\u00e9", "pinned": true}}`,
    `{"note": {"pinned": null}, "page": 18}`,
    `{"note": null}`,
  ].map(utf8)),
  chainVector("chain-opaque-4", "Four opaque deltas, one of them empty.", UID_C, "org.example.crdt-doc", O, [
    Uint8Array.of(0x01, 0x00),
    new Uint8Array(),
    Uint8Array.from({ length: 300 }, (_, i) => i & 0xff),
    Uint8Array.of(0xff),
  ]),
];

const mergeChain = chain[1]!;
const mergeHead = mergeChain.steps.at(-1) as { stateHex: string; hashHex: string };
const snapshot = [
  snapshotVector("snapshot-json-initial", "A JSON stream at version 0: state {} and the genesis hash as head.", {
    streamUid: UID_A,
    version: 0n,
    headHash: genesisHash({ uid: UID_A, type: "org.example.course-progress", encoding: P }),
    encoding: P,
    state: canonicalJson(INITIAL_JSON_STATE),
  }),
  snapshotVector("snapshot-json-chain-head", "The state at the head of chain-merge-patch-5.", {
    streamUid: UID_B,
    version: 5n,
    headHash: utf8Safe(mergeHead.hashHex),
    encoding: M,
    state: utf8Safe(mergeHead.stateHex),
  }),
  snapshotVector("snapshot-opaque-bytes", "An opaque snapshot containing 0x00 and 0xff bytes.", {
    streamUid: UID_C,
    version: 4n,
    headHash: utf8Safe(chain[2]!.headHashHex),
    encoding: O,
    state: Uint8Array.of(0x00, 0xff, 0x00, 0xff, 0x10),
  }),
  snapshotVector("snapshot-opaque-empty", "An empty opaque snapshot (length 0).", {
    streamUid: UID_C,
    version: 0n,
    headHash: genesisHash({ uid: UID_C, type: "org.example.crdt-doc", encoding: O }),
    encoding: O,
    state: new Uint8Array(),
  }),
];

/**
 * A resume payload whose canonical form is exactly `target` bytes long: `position` holds as
 * many `unit` characters as fit, padded with ASCII.
 */
function resumeOfLength(target: number, unit = "p"): Resume {
  const base: Resume = { activityType: "org.example.lesson", resource: "course-42", position: "", fallbackUrl: "https://example.org/c/42", attributes: {} };
  const room = target - resumePayloadBytes(base).length;
  const unitBytes = utf8(unit).length;
  const units = Math.floor(room / unitBytes);
  return { ...base, position: unit.repeat(units) + "p".repeat(room - units * unitBytes) };
}

const resume = [
  resumeVector("resume-empty", "All fields empty: the five members are still present.", { activityType: "", resource: "", position: "", fallbackUrl: "", attributes: {} }),
  resumeVector("resume-unset", "An unset resume payload (null here) counts as the empty one.", undefined),
  resumeVector("resume-attributes", "Attributes sorted by UTF-16 code units; non-ASCII text.", {
    activityType: "org.example.lesson",
    resource: "course-42",
    position: "lesson-4/t=312.5",
    fallbackUrl: "https://example.org/c/42?l=4&t=312.5",
    attributes: { zeta: "last", "\u00e9tape": "\u00e9", Alpha: "upper first", a: "", "\u{1f4d8}": "book", "\ufb33": "dalet" },
  }),
  resumeVector("resume-escapes", "Quotes, backslashes and control characters take their RFC 8785 escapes, which count toward the limit.", {
    activityType: "org.example.editor",
    resource: 'doc "draft" \\ v2',
    position: "line\n12\tcol\u00003",
    fallbackUrl: "https://example.org/d?q=a%20b",
    attributes: { "\u007f": "delete", "key\u001f": "unit separator" },
  }),
  resumeVector("resume-4096", "Canonical form exactly at the 4096-byte limit.", resumeOfLength(4096)),
  resumeVector(
    "resume-4097-multibyte",
    "One byte over the limit, though far under it in characters: the limit counts UTF-8 bytes of the canonical form.",
    resumeOfLength(4097, "\u20ac"),
  ),
  resumeVector("resume-4097", "One byte over the limit: servers reject it (RESUME_PAYLOAD_TOO_LARGE).", resumeOfLength(4097)),
];

const chainA = chain[0]!;
const checkpoint = [
  checkpointVector("checkpoint-one-stream", "One stream at the head of chain-json-patch-200.", [{ streamUid: UID_A, version: 200n, headHash: utf8Safe(chainA.headHashHex) }], {
    activityType: "org.example.lesson",
    resource: "course-42",
    position: "lesson-4",
    fallbackUrl: "https://example.org/c/42",
    attributes: {},
  }),
  checkpointVector(
    "checkpoint-three-streams-unsorted",
    "Three streams given out of order; the preimage lists them sorted by uid.",
    [
      { streamUid: UID_C, version: 4n, headHash: utf8Safe(chain[2]!.headHashHex) },
      { streamUid: UID_A, version: 200n, headHash: utf8Safe(chainA.headHashHex) },
      { streamUid: UID_B, version: 3n, headHash: utf8Safe(chain[1]!.steps[2]!.hashHex) },
    ],
    { activityType: "org.example.reading", resource: "urn:isbn:9780140449136", position: "page=18", fallbackUrl: "", attributes: { device: "tv", lang: "fr" } },
  ),
  checkpointVector("checkpoint-version-zero-empty-resume", "A stream at version 0 (genesis as head hash) with an empty resume payload.", [
    { streamUid: UID_D, version: 0n, headHash: genesisHash({ uid: UID_D, type: "org.example.cart", encoding: M }) },
  ], {}),
];

/** Deterministic lowercase UUID text derived from a seed. */
function uidFromSeed(seed: string): string {
  const hex = toHex(fromSeed(seed)).slice(0, 32);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

checkpoint.push(
  checkpointVector(
    "checkpoint-64-streams",
    "64 streams (the default Limits.max_checkpoint_streams) in generation order, which is not sorted.",
    Array.from({ length: 64 }, (_, i) => ({ streamUid: uidFromSeed(`checkpoint-stream-${i}`), version: BigInt(i * 7 + 1), headHash: fromSeed(`checkpoint-head-${i}`) })),
    { activityType: "org.example.workspace", resource: "ws-1", position: "tab=3", fallbackUrl: "https://example.org/ws/1", attributes: { layout: "split" } },
  ),
);

const canonical = [
  canonicalVector("canonical-numbers", "ECMAScript number serialization (RFC 8785 section 3.2.2.3).", numbersDoc),
  canonicalVector("canonical-unicode", "Strings: only the mandatory escapes, everything else as UTF-8.", unicodeDoc),
  canonicalVector("canonical-key-order", "Members sorted by UTF-16 code units, not by code points or UTF-8 bytes.", keyOrderDoc),
  canonicalVector("canonical-scalars-root", "A scalar at the root.", ` "root string" `),
  canonicalVector("canonical-nested", "Whitespace removed at every level; array order kept.", `{ "b" : [ 3 , { "z" : null , "y" : true } , [ ] , { } ] , "a" : false }`),
  canonicalVector("canonical-depth-256", "256 levels of nesting: the deepest document accepted.", `${"[".repeat(255)}{}${"]".repeat(255)}`),
  canonicalVector("canonical-tojson-member", "A member named toJSON is ordinary data.", `{"toJSON": "not a function", "b": 2, "a": 1}`),
];

const malformed = [
  malformedVector("malformed-invalid-utf8", "0xff is never valid UTF-8.", Uint8Array.of(0x22, 0xff, 0x22)),
  malformedVector("malformed-overlong-utf8", "Overlong encoding of '/' (0xc0 0xaf).", Uint8Array.of(0x22, 0xc0, 0xaf, 0x22)),
  malformedVector("malformed-encoded-surrogate", "A surrogate encoded directly in UTF-8 (CESU-8).", Uint8Array.of(0x22, 0xed, 0xa0, 0x80, 0x22)),
  malformedVector("malformed-bom", "A UTF-8 byte-order mark before the document.", Uint8Array.of(0xef, 0xbb, 0xbf, 0x7b, 0x7d)),
  malformedVector("malformed-duplicate-member", "Duplicate member names, also when spelled differently.", utf8(`{"a": 1, "\\u0061": 2}`)),
  malformedVector("malformed-lone-surrogate", "A lone surrogate written as an escape.", utf8(`["\\ud800"]`)),
  malformedVector("malformed-number-overflow", "A number beyond the IEEE 754 double range.", utf8(`[1e400]`)),
  malformedVector("malformed-trailing-comma", "Not RFC 8259 JSON.", utf8(`[1, 2,]`)),
  malformedVector("malformed-empty", "Zero bytes are not a JSON document.", new Uint8Array()),
  malformedVector("malformed-proto-member", "The reserved member name __proto__.", utf8(`{"a": {"__proto__": {}}}`)),
  malformedVector("malformed-too-deep", "257 levels of nesting (the limit is 256).", utf8(`${"[".repeat(257)}${"]".repeat(257)}`)),
];

const materialize = [
  materializeVector("materialize-json-patch-all-ops", "Every RFC 6902 operation, escaped pointers (~0, ~1) and array insertion.", P, `{}`, [
    `[{"op":"add","path":"/a~1b","value":{"c~d":[1,2,3]}}]`,
    `[{"op":"add","path":"/a~1b/c~0d/1","value":"inserted"},{"op":"add","path":"/a~1b/c~0d/-","value":"appended"}]`,
    `[{"op":"copy","from":"/a~1b/c~0d","path":"/copy"},{"op":"remove","path":"/copy/0"}]`,
    `[{"op":"move","from":"/copy","path":"/moved"},{"op":"test","path":"/moved","value":["inserted",2,3,"appended"]}]`,
    `[{"op":"replace","path":"/moved/0","value":null},{"op":"test","path":"/a~1b/c~0d/0","value":1.0}]`,
    `[{"op":"move","from":"/moved/0","path":"/moved/3"}]`,
  ]),
  materializeVector("materialize-json-patch-root", "Replacing the root, and a non-object root.", P, `{"x":1}`, [
    `[{"op":"replace","path":"","value":[1,2]}]`,
    `[{"op":"add","path":"/0","value":0}]`,
    `[{"op":"add","path":"","value":"just a string"}]`,
    `[{"op":"replace","path":"","value":{"back":{}}}]`,
  ]),
  materializeVector("materialize-merge-patch", "RFC 7396: null deletes, arrays replace, objects merge, a non-object patch replaces the root.", M, `{}`, [
    `{"a":{"b":1,"c":[1,2]},"d":"x"}`,
    `{"a":{"c":[3],"e":{"f":null}},"d":null}`,
    `{"a":{"b":null}}`,
    `["root", {"k": null}]`,
    `{"fresh":{"nested":true}}`,
    `null`,
  ]),
  materializeVector("materialize-test-failed", "A failed test makes the whole patch inapplicable.", P, `{"n":1}`, [`[{"op":"replace","path":"/n","value":2},{"op":"test","path":"/n","value":3}]`], "not-applicable"),
  materializeVector("materialize-missing-path", "Removing a member that does not exist.", P, `{"n":1}`, [`[{"op":"remove","path":"/m"}]`], "not-applicable"),
  materializeVector("materialize-inherited-member", "Names of JavaScript built-ins are not members of an empty object.", P, `{}`, [`[{"op":"replace","path":"/constructor","value":1}]`], "not-applicable"),
  materializeVector("materialize-index-out-of-range", "Adding past the end of an array.", P, `{"a":[1]}`, [`[{"op":"add","path":"/a/2","value":1}]`], "not-applicable"),
  materializeVector("materialize-leading-zero-index", "Array indices have no leading zeros.", P, `{"a":[1,2]}`, [`[{"op":"replace","path":"/a/01","value":9}]`], "not-applicable"),
  materializeVector("materialize-remove-root", "Removing the whole document is not defined.", P, `{}`, [`[{"op":"remove","path":""}]`], "malformed"),
  materializeVector("materialize-move-into-child", "A location cannot be moved into one of its children.", P, `{"a":{"b":{}}}`, [`[{"op":"move","from":"/a","path":"/a/b/c"}]`], "malformed"),
  materializeVector("materialize-unknown-op", "An unknown op.", P, `{}`, [`[{"op":"merge","path":"/a","value":1}]`], "malformed"),
  materializeVector("materialize-not-an-array", "A JSON Patch must be an array.", P, `{}`, [`{"op":"add","path":"/a","value":1}`], "malformed"),
  materializeVector(
    "materialize-result-too-deep",
    "Copying a 256-level document into itself would nest 257 levels.",
    P,
    `${"[".repeat(256)}${"]".repeat(256)}`,
    [`[{"op":"copy","from":"","path":"/0"}]`],
    "not-applicable",
  ),
  materializeVector("materialize-proto-pointer", "A pointer naming the reserved member __proto__.", P, `{}`, [`[{"op":"add","path":"/__proto__/polluted","value":true}]`], "malformed"),
];

const files: Record<string, { kind: string; description: string; vectors: unknown[] }> = {
  "genesis.json": { kind: "genesis", description: "Genesis hash: the head hash of a stream at version 0.", vectors: genesis },
  "delta.json": { kind: "delta", description: "Delta hash of single deltas, with client bytes and canonical payload.", vectors: delta },
  "chain.json": { kind: "chain", description: "Whole chains: every step's preimage and hash. JSON chains also give stateHex, the state after the step: after every step of a short chain, after every 25th step and at the head of a long one; opaque chains give no state.", vectors: chain },
  "snapshot.json": { kind: "snapshot", description: "Snapshot hash of JSON and opaque states.", vectors: snapshot },
  "resume.json": { kind: "resume", description: "Canonical bytes of resume payloads and the 4096-byte limit.", vectors: resume },
  "checkpoint.json": { kind: "checkpoint", description: "Checkpoint digest over unsorted entries and a resume payload.", vectors: checkpoint },
  "canonical-json.json": { kind: "canonical-json", description: "RFC 8785 canonical bytes of JSON documents.", vectors: canonical },
  "malformed-json.json": { kind: "malformed-json", description: "Bytes that are not acceptable JSON documents.", vectors: malformed },
  "materialize.json": { kind: "materialize", description: "JSON states after sequences of patches, and patches that must fail.", vectors: materialize },
};

const check = process.argv.includes("--check");
let stale = 0;
for (const [name, content] of Object.entries(files)) {
  const text = `${JSON.stringify({ formatVersion: 1, ...content }, null, 2)}\n`;
  const path = join(here, name);
  if (check) {
    let current = "";
    try {
      current = readFileSync(path, "utf8");
    } catch {
      // a missing file is stale
    }
    if (current !== text) {
      stale++;
      console.error(`stale: conformance/vectors/${name}`);
    }
  } else {
    writeFileSync(path, text);
  }
}
const total = Object.values(files).reduce((sum, file) => sum + file.vectors.length, 0);
if (stale > 0) process.exit(1);
console.log(`${check ? "checked" : "wrote"} ${total} vectors in ${Object.keys(files).length} files`);
