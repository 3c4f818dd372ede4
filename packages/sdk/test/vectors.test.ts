// Every committed vector in conformance/vectors must verify with the SDK implementation, byte
// for byte: the vectors are the source of truth, the SDK is one implementation of them.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  applyJsonDelta,
  canonicalJson,
  checkpointDigest,
  checkpointPreimage,
  createSnapshotHasher,
  deltaHash,
  deltaPreimage,
  fromHex,
  genesisHash,
  genesisPreimage,
  isMalformedPatchError,
  isPatchNotApplicableError,
  MAX_RESUME_PAYLOAD_BYTES,
  materializeJsonState,
  parseJsonDocument,
  resumePayloadBytes,
  snapshotHash,
  snapshotPreimage,
  toHex,
  verifyChain,
  type JsonValue,
} from "../src/protocol/index.js";
import type { DeltaEncoding } from "../src/gen/continuity/v1/types.js";

const vectorsDirectory = new URL("../../../conformance/vectors/", import.meta.url);

function load<T>(name: string): T[] {
  const file = JSON.parse(readFileSync(new URL(name, vectorsDirectory), "utf8")) as { formatVersion: number; vectors: T[] };
  expect(file.formatVersion).toBe(1);
  return file.vectors;
}

interface Step {
  version: string;
  clientPayloadHex: string;
  payloadHex: string;
  prevHashHex: string;
  preimageHex: string;
  hashHex: string;
  stateHex?: string;
}
interface ResumeInput {
  activityType?: string;
  resource?: string;
  position?: string;
  fallbackUrl?: string;
  attributes?: Record<string, string>;
}

const genesis = load<{ id: string; input: { uid: string; type: string; encoding: DeltaEncoding }; preimageHex: string; hashHex: string }>("genesis.json");
const deltas = load<{ id: string; input: Omit<Step, "preimageHex" | "hashHex"> & { encoding: DeltaEncoding }; preimageHex: string; hashHex: string }>("delta.json");
const chains = load<{ id: string; stream: { uid: string; type: string; encoding: DeltaEncoding }; genesisHashHex: string; steps: Step[]; headVersion: string; headHashHex: string }>("chain.json");
const snapshots = load<{
  id: string;
  input: { streamUid: string; version: string; headHashHex: string; encoding: DeltaEncoding; stateHex: string };
  preimageHex: string;
  hashHex: string;
}>("snapshot.json");
const resumes = load<{ id: string; input: ResumeInput | null; canonicalHex: string; byteLength: number; withinLimit: boolean }>("resume.json");
const checkpoints = load<{
  id: string;
  input: { entries: { streamUid: string; version: string; headHashHex: string }[]; resume: ResumeInput };
  resumeHex: string;
  preimageHex: string;
  digestHex: string;
}>("checkpoint.json");
const canonicals = load<{ id: string; inputHex: string; canonicalHex: string }>("canonical-json.json");
const malformed = load<{ id: string; inputHex: string; reason: string }>("malformed-json.json");
const materializations = load<{
  id: string;
  encoding: DeltaEncoding;
  initialStateHex: string;
  steps: { patchHex: string; stateHex: string }[];
  failing?: { patchHex: string; outcome: "malformed" | "not-applicable" };
}>("materialize.json");

const OPAQUE = 3 as DeltaEncoding;

function stored(encoding: DeltaEncoding, clientPayloadHex: string): Uint8Array {
  return encoding === OPAQUE ? fromHex(clientPayloadHex) : canonicalJson(parseJsonDocument(fromHex(clientPayloadHex)));
}

const cases = <T extends { id: string }>(list: T[]) => list.map((vector) => [vector.id, vector] as const);

describe("SDK against the committed vectors", () => {
  it.each(cases(genesis))("genesis %s", (_id, vector) => {
    expect(toHex(genesisPreimage(vector.input))).toBe(vector.preimageHex);
    expect(toHex(genesisHash(vector.input))).toBe(vector.hashHex);
  });

  it.each(cases(deltas))("delta %s", (_id, vector) => {
    const payload = stored(vector.input.encoding, vector.input.clientPayloadHex);
    expect(toHex(payload)).toBe(vector.input.payloadHex);
    const input = { prevHash: fromHex(vector.input.prevHashHex), version: BigInt(vector.input.version), encoding: vector.input.encoding, payload };
    expect(toHex(deltaPreimage(input))).toBe(vector.preimageHex);
    expect(toHex(deltaHash(input))).toBe(vector.hashHex);
  });

  it.each(cases(chains))("chain %s", (_id, chain) => {
    const { encoding } = chain.stream;
    expect(toHex(genesisHash(chain.stream))).toBe(chain.genesisHashHex);
    let prevHash = fromHex(chain.genesisHashHex);
    let state: JsonValue = {};
    for (const step of chain.steps) {
      expect(step.prevHashHex).toBe(toHex(prevHash));
      const payload = stored(encoding, step.clientPayloadHex);
      expect(toHex(payload)).toBe(step.payloadHex);
      const input = { prevHash, version: BigInt(step.version), encoding, payload };
      expect(toHex(deltaPreimage(input))).toBe(step.preimageHex);
      prevHash = deltaHash(input);
      expect(toHex(prevHash)).toBe(step.hashHex);
      if (encoding !== OPAQUE) {
        state = applyJsonDelta(state, encoding, payload);
        if (step.stateHex !== undefined) expect(toHex(canonicalJson(state))).toBe(step.stateHex);
      }
    }
    expect(toHex(prevHash)).toBe(chain.headHashHex);

    // verifyChain agrees with the vector, from the genesis and from a midpoint.
    const run = chain.steps.map((step) => ({ version: BigInt(step.version), payload: fromHex(step.payloadHex), hash: fromHex(step.hashHex), prevHash: fromHex(step.prevHashHex) }));
    const fromGenesis = verifyChain({ start: { version: 0n, hash: fromHex(chain.genesisHashHex) }, encoding, deltas: run });
    expect(fromGenesis).toEqual({ ok: true, headVersion: BigInt(chain.headVersion), headHash: fromHex(chain.headHashHex) });
    const middle = Math.floor(run.length / 2);
    const fromMiddle = verifyChain({ start: { version: BigInt(middle), hash: run[middle - 1]!.hash }, encoding, deltas: run.slice(middle) });
    expect(fromMiddle.ok).toBe(true);

    if (encoding !== OPAQUE) {
      const last = chain.steps.at(-1)!;
      expect(toHex(canonicalJson(materializeJsonState({}, encoding, run.map((delta) => delta.payload))))).toBe(last.stateHex);
    }
  });

  it.each(cases(snapshots))("snapshot %s", (_id, vector) => {
    const input = {
      streamUid: vector.input.streamUid,
      version: BigInt(vector.input.version),
      headHash: fromHex(vector.input.headHashHex),
      encoding: vector.input.encoding,
      state: fromHex(vector.input.stateHex),
    };
    expect(toHex(snapshotPreimage(input))).toBe(vector.preimageHex);
    expect(toHex(snapshotHash(input))).toBe(vector.hashHex);
    const hasher = createSnapshotHasher({ ...input, sizeBytes: input.state.length });
    for (let offset = 0; offset < input.state.length; offset += 3) hasher.update(input.state.subarray(offset, offset + 3));
    expect(toHex(hasher.digest())).toBe(vector.hashHex);
  });

  it.each(cases(resumes))("resume %s", (_id, vector) => {
    const bytes = resumePayloadBytes(vector.input ?? undefined);
    expect(toHex(bytes)).toBe(vector.canonicalHex);
    expect(bytes.length).toBe(vector.byteLength);
    expect(bytes.length <= MAX_RESUME_PAYLOAD_BYTES).toBe(vector.withinLimit);
  });

  it.each(cases(checkpoints))("checkpoint %s", (_id, vector) => {
    const input = {
      entries: vector.input.entries.map((entry) => ({ streamUid: entry.streamUid, version: BigInt(entry.version), headHash: fromHex(entry.headHashHex) })),
      resume: vector.input.resume,
    };
    expect(toHex(resumePayloadBytes(input.resume))).toBe(vector.resumeHex);
    expect(toHex(checkpointPreimage(input))).toBe(vector.preimageHex);
    expect(toHex(checkpointDigest(input))).toBe(vector.digestHex);
  });

  it.each(cases(canonicals))("canonical JSON %s", (_id, vector) => {
    expect(toHex(canonicalJson(parseJsonDocument(fromHex(vector.inputHex))))).toBe(vector.canonicalHex);
  });

  it.each(cases(malformed))("malformed JSON %s", (_id, vector) => {
    let failure: unknown;
    try {
      parseJsonDocument(fromHex(vector.inputHex));
    } catch (error) {
      failure = error;
    }
    expect(isMalformedPatchError(failure)).toBe(true);
    expect((failure as { reason: string }).reason).toBe(vector.reason);
  });

  it.each(cases(materializations))("materialize %s", (_id, vector) => {
    let state = parseJsonDocument(fromHex(vector.initialStateHex));
    for (const step of vector.steps) {
      state = applyJsonDelta(state, vector.encoding, fromHex(step.patchHex));
      expect(toHex(canonicalJson(state))).toBe(step.stateHex);
    }
    if (vector.failing !== undefined) {
      const before = toHex(canonicalJson(state));
      let failure: unknown;
      try {
        applyJsonDelta(state, vector.encoding, fromHex(vector.failing.patchHex));
      } catch (error) {
        failure = error;
      }
      const outcome = isMalformedPatchError(failure) ? "malformed" : isPatchNotApplicableError(failure) ? "not-applicable" : "none";
      expect(outcome).toBe(vector.failing.outcome);
      expect(toHex(canonicalJson(state))).toBe(before);
    }
  });
});
