// The preimages are rebuilt here by hand, field by field with Node's Buffer and node:crypto,
// so a wrong byte in the implementation cannot be mirrored by the test.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import {
  checkpointDigest,
  checkpointPreimage,
  createSnapshotHasher,
  deltaHash,
  deltaPreimage,
  genesisHash,
  genesisPreimage,
  resumePayloadBytes,
  snapshotHash,
  snapshotPreimage,
} from "./hashes.js";
import { toHex } from "./bytes.js";

const sha = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const tag = (name: string) => Buffer.from(`continuity.v1/${name}\0`, "latin1");
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};
const lp = (s: string) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);

const UID = "0190f3a4-6c1e-7d2b-9a8f-3e5d4c2b1a00";
const UID2 = "0190f3a4-6c1e-7d2b-9a8f-3e5d4c2b1a01";
const H1 = new Uint8Array(32).fill(0x11);
const H2 = new Uint8Array(32).fill(0x22);
const { DELTA_ENCODING_JSON_PATCH: PATCH, DELTA_ENCODING_JSON_MERGE_PATCH: MERGE, DELTA_ENCODING_OPAQUE: OPAQUE } = DeltaEncoding;

it("hashes are SHA-256 of the preimage", () => {
  const input = { uid: UID, type: "t.t", encoding: PATCH };
  expect(toHex(genesisHash(input))).toBe(sha(genesisPreimage(input)));
});

describe("genesis", () => {
  it("has the layout tag || lp(uid) || lp(type) || u8(encoding)", () => {
    const expected = Buffer.concat([tag("genesis"), lp(UID), lp("org.example.x"), Buffer.of(2)]);
    expect(toHex(genesisPreimage({ uid: UID, type: "org.example.x", encoding: MERGE }))).toBe(expected.toString("hex"));
  });

  it("changes with every field", () => {
    const base = toHex(genesisHash({ uid: UID, type: "org.example.x", encoding: PATCH }));
    expect(toHex(genesisHash({ uid: UID2, type: "org.example.x", encoding: PATCH }))).not.toBe(base);
    expect(toHex(genesisHash({ uid: UID, type: "org.example.y", encoding: PATCH }))).not.toBe(base);
    expect(toHex(genesisHash({ uid: UID, type: "org.example.x", encoding: OPAQUE }))).not.toBe(base);
  });

  it("accepts only lowercase UUIDs and real encodings", () => {
    expect(() => genesisHash({ uid: UID.toUpperCase(), type: "a.b", encoding: PATCH })).toThrow(RangeError);
    expect(() => genesisHash({ uid: "stream-1", type: "a.b", encoding: PATCH })).toThrow(RangeError);
    expect(() => genesisHash({ uid: UID, type: "a.b", encoding: DeltaEncoding.DELTA_ENCODING_UNSPECIFIED })).toThrow(RangeError);
    expect(() => genesisHash({ uid: UID, type: "a.b", encoding: DeltaEncoding.UNRECOGNIZED })).toThrow(RangeError);
  });
});

describe("delta", () => {
  const base = { prevHash: H1, version: 7n, encoding: OPAQUE, payload: Uint8Array.of(0, 0xff) };

  it("has the layout tag || prev || u64be(version) || u8(encoding) || u32be(len) || payload", () => {
    const expected = Buffer.concat([tag("delta"), Buffer.from(H1), u64(7n), Buffer.of(3), u32(2), Buffer.of(0, 0xff)]);
    expect(toHex(deltaPreimage(base))).toBe(expected.toString("hex"));
    expect(toHex(deltaHash(base))).toBe(sha(expected));
  });

  it("changes with every field, including one flipped payload bit and a moved byte", () => {
    const reference = toHex(deltaHash(base));
    const variants = [
      { ...base, prevHash: H2 },
      { ...base, version: 8n },
      { ...base, encoding: PATCH },
      { ...base, payload: Uint8Array.of(1, 0xff) },
      { ...base, payload: Uint8Array.of(0, 0xff, 0) },
      { ...base, payload: Uint8Array.of(0xff, 0) },
    ];
    const hashes = variants.map((variant) => toHex(deltaHash(variant)));
    expect(hashes).not.toContain(reference);
    expect(new Set(hashes).size).toBe(hashes.length);
  });

  it("accepts number versions as long as they are safe integers", () => {
    expect(toHex(deltaHash({ ...base, version: 7 }))).toBe(toHex(deltaHash(base)));
    expect(() => deltaHash({ ...base, prevHash: new Uint8Array(31) })).toThrow(RangeError);
  });
});

describe("snapshot", () => {
  const base = { streamUid: UID, version: 3n, headHash: H1, encoding: MERGE, state: Buffer.from('{"a":1}') };

  it("has the layout tag || lp(uid) || u64be(version) || head || u8(encoding) || u64be(len) || state", () => {
    const expected = Buffer.concat([tag("snapshot"), lp(UID), u64(3n), Buffer.from(H1), Buffer.of(2), u64(7n), Buffer.from('{"a":1}')]);
    expect(toHex(snapshotPreimage(base))).toBe(expected.toString("hex"));
    expect(toHex(snapshotHash(base))).toBe(sha(expected));
  });

  it("changes with every field", () => {
    const reference = toHex(snapshotHash(base));
    for (const variant of [
      { ...base, streamUid: UID2 },
      { ...base, version: 4n },
      { ...base, headHash: H2 },
      { ...base, encoding: PATCH },
      { ...base, state: Buffer.from('{"a":2}') },
    ]) {
      expect(toHex(snapshotHash(variant))).not.toBe(reference);
    }
  });

  it("hashes chunked input like whole input and refuses a size mismatch", () => {
    const hasher = createSnapshotHasher({ ...base, sizeBytes: 7 });
    hasher.update(base.state.subarray(0, 2));
    hasher.update(new Uint8Array());
    hasher.update(base.state.subarray(2));
    expect(toHex(hasher.digest())).toBe(toHex(snapshotHash(base)));

    const short = createSnapshotHasher({ ...base, sizeBytes: 8 });
    short.update(base.state);
    expect(() => short.digest()).toThrow(RangeError);
    const long = createSnapshotHasher({ ...base, sizeBytes: 6 });
    expect(() => long.update(base.state)).toThrow(RangeError);
  });
});

describe("resume payload", () => {
  it("always has all five members, sorted, even when empty or unset", () => {
    const empty = '{"activityType":"","attributes":{},"fallbackUrl":"","position":"","resource":""}';
    expect(Buffer.from(resumePayloadBytes(undefined)).toString()).toBe(empty);
    expect(Buffer.from(resumePayloadBytes({})).toString()).toBe(empty);
  });

  it("sorts attributes and keeps a member named __proto__ as data", () => {
    const attributes: Record<string, string> = { b: "2", a: "1" };
    Object.defineProperty(attributes, "__proto__", { value: "x", enumerable: true });
    const text = Buffer.from(resumePayloadBytes({ activityType: "t", attributes })).toString();
    expect(text).toBe('{"activityType":"t","attributes":{"__proto__":"x","a":"1","b":"2"},"fallbackUrl":"","position":"","resource":""}');
  });

  it("refuses lone surrogates", () => {
    expect(() => resumePayloadBytes({ position: "\ud800" })).toThrow(TypeError);
  });
});

describe("checkpoint", () => {
  const resume = { activityType: "a.b", resource: "r", position: "p", fallbackUrl: "", attributes: {} };
  const entries = [
    { streamUid: UID2, version: 5n, headHash: H2 },
    { streamUid: UID, version: 2n, headHash: H1 },
  ];

  it("has the layout tag || u32be(n) || sorted entries || u32be(len) || resume", () => {
    const resumeBytes = Buffer.from(resumePayloadBytes(resume));
    const expected = Buffer.concat([
      tag("checkpoint"),
      u32(2),
      lp(UID),
      u64(2n),
      Buffer.from(H1),
      lp(UID2),
      u64(5n),
      Buffer.from(H2),
      u32(resumeBytes.length),
      resumeBytes,
    ]);
    expect(toHex(checkpointPreimage({ entries, resume }))).toBe(expected.toString("hex"));
    expect(toHex(checkpointDigest({ entries, resume }))).toBe(sha(expected));
  });

  it("does not depend on entry order but on every entry field and the resume payload", () => {
    const reference = toHex(checkpointDigest({ entries, resume }));
    expect(toHex(checkpointDigest({ entries: [...entries].reverse(), resume }))).toBe(reference);
    for (const variant of [
      { entries: [entries[0]!], resume },
      { entries: [{ ...entries[0]!, version: 6n }, entries[1]!], resume },
      { entries: [{ ...entries[0]!, headHash: H1 }, entries[1]!], resume },
      { entries, resume: { ...resume, position: "q" } },
      { entries, resume: { ...resume, attributes: { k: "v" } } },
    ]) {
      expect(toHex(checkpointDigest(variant))).not.toBe(reference);
    }
  });

  it("refuses a stream named twice", () => {
    expect(() => checkpointDigest({ entries: [entries[0]!, entries[0]!], resume })).toThrow(RangeError);
  });
});

it("separates domains: equal field bytes never give equal hashes across kinds", () => {
  // A delta and a snapshot over the same visible fields must not collide.
  const delta = toHex(deltaHash({ prevHash: H1, version: 1n, encoding: OPAQUE, payload: new Uint8Array() }));
  const snapshot = toHex(snapshotHash({ streamUid: UID, version: 1n, headHash: H1, encoding: OPAQUE, state: new Uint8Array() }));
  expect(delta).not.toBe(snapshot);
  expect(Buffer.from(genesisPreimage({ uid: UID, type: "a.b", encoding: OPAQUE })).subarray(0, 22).toString("latin1")).toBe("continuity.v1/genesis\0");
});
