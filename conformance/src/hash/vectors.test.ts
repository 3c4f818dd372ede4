// Every committed vector must verify with the suite's independent implementation: preimages
// byte for byte, hashes, canonical forms, materialized states and refusals.
import { describe, expect, it } from "vitest";
import {
  applyJsonPatch,
  applyMergePatch,
  canonicalJson,
  checkpointDigest,
  checkpointPreimage,
  deltaHash,
  deltaPreimage,
  genesisHash,
  genesisPreimage,
  loadVectorFiles,
  parseStrictJson,
  PatchFailure,
  resumePayloadBytes,
  snapshotHash,
  snapshotPreimage,
  StrictJsonError,
} from "./index.js";

const vectors = loadVectorFiles();
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const bytes = (text: string) => new Uint8Array(Buffer.from(text, "hex"));
const OPAQUE = 3;

/** What a server stores for a client payload: the canonical JSON, or opaque bytes as sent. */
function storedPayload(encoding: number, clientPayloadHex: string): Uint8Array {
  return encoding === OPAQUE ? bytes(clientPayloadHex) : canonicalJson(parseStrictJson(bytes(clientPayloadHex)));
}

function applyPatch(encoding: number, state: unknown, patch: unknown): unknown {
  return encoding === 1 ? applyJsonPatch(state, patch) : applyMergePatch(state, patch);
}

describe("independent implementation against the committed vectors", () => {
  it("has the vector coverage the spec promises", () => {
    const total = Object.values(vectors).reduce((sum, list) => sum + list.length, 0);
    expect(total).toBeGreaterThanOrEqual(24);
    expect(new Set(vectors["genesis.json"].map((vector) => vector.input.encoding))).toEqual(new Set([1, 2, 3]));
    expect(Math.max(...vectors["chain.json"].map((chain) => chain.steps.length))).toBeGreaterThanOrEqual(200);
  });

  it.each(vectors["genesis.json"].map((vector) => [vector.id, vector] as const))("genesis %s", (_id, vector) => {
    expect(hex(genesisPreimage(vector.input))).toBe(vector.preimageHex);
    expect(hex(genesisHash(vector.input))).toBe(vector.hashHex);
  });

  it.each(vectors["delta.json"].map((vector) => [vector.id, vector] as const))("delta %s", (_id, vector) => {
    const payload = storedPayload(vector.input.encoding, vector.input.clientPayloadHex);
    expect(hex(payload)).toBe(vector.input.payloadHex);
    const input = { prevHash: bytes(vector.input.prevHashHex), version: BigInt(vector.input.version), encoding: vector.input.encoding, payload };
    expect(hex(deltaPreimage(input))).toBe(vector.preimageHex);
    expect(hex(deltaHash(input))).toBe(vector.hashHex);
  });

  it.each(vectors["chain.json"].map((vector) => [vector.id, vector] as const))("chain %s", (_id, chain) => {
    const { encoding } = chain.stream;
    expect(hex(genesisHash(chain.stream))).toBe(chain.genesisHashHex);
    let prevHash: Uint8Array = bytes(chain.genesisHashHex);
    let state: unknown = {};
    chain.steps.forEach((step, index) => {
      expect(step.version).toBe(String(index + 1));
      expect(step.prevHashHex).toBe(hex(prevHash));
      const payload = storedPayload(encoding, step.clientPayloadHex);
      expect(hex(payload)).toBe(step.payloadHex);
      const input = { prevHash, version: BigInt(step.version), encoding, payload };
      expect(hex(deltaPreimage(input))).toBe(step.preimageHex);
      const hash = deltaHash(input);
      expect(hex(hash)).toBe(step.hashHex);
      if (encoding !== OPAQUE) {
        state = applyPatch(encoding, state, parseStrictJson(payload));
        if (step.stateHex !== undefined) expect(hex(canonicalJson(state))).toBe(step.stateHex);
      }
      prevHash = hash;
    });
    expect(chain.headVersion).toBe(String(chain.steps.length));
    expect(hex(prevHash)).toBe(chain.headHashHex);
  });

  it.each(vectors["snapshot.json"].map((vector) => [vector.id, vector] as const))("snapshot %s", (_id, vector) => {
    const input = {
      streamUid: vector.input.streamUid,
      version: BigInt(vector.input.version),
      headHash: bytes(vector.input.headHashHex),
      encoding: vector.input.encoding,
      state: bytes(vector.input.stateHex),
    };
    if (input.encoding !== OPAQUE) expect(hex(canonicalJson(parseStrictJson(input.state)))).toBe(vector.input.stateHex);
    expect(hex(snapshotPreimage(input))).toBe(vector.preimageHex);
    expect(hex(snapshotHash(input))).toBe(vector.hashHex);
  });

  it.each(vectors["resume.json"].map((vector) => [vector.id, vector] as const))("resume %s", (_id, vector) => {
    const canonical = resumePayloadBytes(vector.input ?? undefined);
    expect(hex(canonical)).toBe(vector.canonicalHex);
    expect(Buffer.from(canonical).toString("utf8")).toBe(vector.canonicalText);
    expect(canonical.length).toBe(vector.byteLength);
    expect(vector.withinLimit).toBe(canonical.length <= 4096);
  });

  it.each(vectors["checkpoint.json"].map((vector) => [vector.id, vector] as const))("checkpoint %s", (_id, vector) => {
    const input = {
      entries: vector.input.entries.map((entry) => ({ streamUid: entry.streamUid, version: BigInt(entry.version), headHash: bytes(entry.headHashHex) })),
      resume: vector.input.resume,
    };
    expect(hex(resumePayloadBytes(input.resume))).toBe(vector.resumeHex);
    expect(hex(checkpointPreimage(input))).toBe(vector.preimageHex);
    expect(hex(checkpointDigest(input))).toBe(vector.digestHex);
    expect(hex(checkpointDigest({ ...input, entries: [...input.entries].reverse() }))).toBe(vector.digestHex);
  });

  it.each(vectors["canonical-json.json"].map((vector) => [vector.id, vector] as const))("canonical JSON %s", (_id, vector) => {
    const canonical = canonicalJson(parseStrictJson(bytes(vector.inputHex)));
    expect(hex(canonical)).toBe(vector.canonicalHex);
    // Canonical bytes are a fixed point.
    expect(hex(canonicalJson(parseStrictJson(canonical)))).toBe(vector.canonicalHex);
  });

  it.each(vectors["malformed-json.json"].map((vector) => [vector.id, vector] as const))("malformed JSON %s", (_id, vector) => {
    let failure: unknown;
    try {
      parseStrictJson(bytes(vector.inputHex));
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(StrictJsonError);
    expect((failure as StrictJsonError).failure).toBe(vector.reason);
  });

  it.each(vectors["materialize.json"].map((vector) => [vector.id, vector] as const))("materialize %s", (_id, vector) => {
    let state = parseStrictJson(bytes(vector.initialStateHex));
    for (const step of vector.steps) {
      state = applyPatch(vector.encoding, state, parseStrictJson(bytes(step.patchHex)));
      expect(hex(canonicalJson(state))).toBe(step.stateHex);
    }
    if (vector.failing !== undefined) {
      const failing = vector.failing;
      const before = hex(canonicalJson(state));
      let failure: unknown;
      try {
        applyPatch(vector.encoding, state, parseStrictJson(bytes(failing.patchHex)));
      } catch (error) {
        failure = error;
      }
      const outcome = failure instanceof StrictJsonError ? "malformed" : failure instanceof PatchFailure ? failure.outcome : undefined;
      expect(outcome).toBe(failing.outcome);
      expect(hex(canonicalJson(state))).toBe(before);
    } else {
      expect(Buffer.from(canonicalJson(state)).toString("utf8")).toBe(vector.finalStateText);
    }
  });
});
