import { describe, expect, it } from "vitest";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { verifyChain, type ChainDelta } from "./chain.js";
import { deltaHash, genesisHash } from "./hashes.js";

const encoding = DeltaEncoding.DELTA_ENCODING_OPAQUE;
const genesis = genesisHash({ uid: "0190f3a4-6c1e-7d2b-9a8f-3e5d4c2b1a00", type: "org.example.t", encoding });

function buildChain(count: number): ChainDelta[] {
  const deltas: ChainDelta[] = [];
  let prevHash = genesis;
  for (let version = 1n; version <= BigInt(count); version++) {
    const payload = Uint8Array.of(Number(version));
    const hash = deltaHash({ prevHash, version, encoding, payload });
    deltas.push({ version, payload, hash, prevHash, encoding });
    prevHash = hash;
  }
  return deltas;
}

const start = { version: 0n, hash: genesis };

describe("verifyChain", () => {
  it("accepts an intact chain and an empty run", () => {
    const deltas = buildChain(5);
    expect(verifyChain({ start, encoding, deltas })).toEqual({ ok: true, headVersion: 5n, headHash: deltas[4]!.hash });
    expect(verifyChain({ start, encoding, deltas: [] })).toEqual({ ok: true, headVersion: 0n, headHash: genesis });
    expect(verifyChain({ start: { version: 2, hash: deltas[1]!.hash }, encoding, deltas: deltas.slice(2) }).ok).toBe(true);
  });

  it.each([1, 3, 5])("reports a tampered payload at version %i and the last good point", (version) => {
    const deltas = buildChain(5);
    deltas[version - 1] = { ...deltas[version - 1]!, payload: Uint8Array.of(0xee) };
    expect(verifyChain({ start, encoding, deltas })).toEqual({
      ok: false,
      brokenVersion: BigInt(version),
      reason: "hash-mismatch",
      lastGoodVersion: BigInt(version - 1),
      lastGoodHash: version === 1 ? genesis : deltas[version - 2]!.hash,
    });
  });

  it("reports gaps, reordering, foreign encodings and wrong prev hashes", () => {
    const deltas = buildChain(4);
    const check = (run: ChainDelta[]) => {
      const result = verifyChain({ start, encoding, deltas: run });
      return result.ok ? "ok" : `${result.reason}@${result.brokenVersion}`;
    };
    expect(check([deltas[0]!, deltas[2]!])).toBe("version-gap@2");
    expect(check([deltas[1]!, deltas[0]!])).toBe("version-gap@1");
    expect(check([deltas[0]!, { ...deltas[1]!, encoding: DeltaEncoding.DELTA_ENCODING_JSON_PATCH }])).toBe("encoding-mismatch@2");
    expect(check([deltas[0]!, { ...deltas[1]!, prevHash: genesis }])).toBe("prev-hash-mismatch@2");
    expect(check([deltas[0]!, { ...deltas[1]!, hash: deltas[2]!.hash }])).toBe("hash-mismatch@2");
    // A chain that starts from the wrong point does not verify either.
    expect(verifyChain({ start: { version: 0n, hash: deltas[0]!.hash }, encoding, deltas }).ok).toBe(false);
  });
});
