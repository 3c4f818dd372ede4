import { createBundleSealer } from "@continuity/bundle";
import { continuity } from "@continuity/sdk/gen";
import { canonicalJson, deltaHash, genesisHash } from "@continuity/sdk/protocol";
import { createChannel, createClientFactory } from "nice-grpc";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import { Metadata } from "nice-grpc-common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PortabilityServiceRawDefinition } from "../../src/services/portability-service.js";
import { describeFailure, startTestServer, type TestServer } from "../../src/testing/harness.js";

const v1 = continuity.v1;

// A bundle is input like any other: a chain-valid delta that doubles the state with copies
// must meet the same bounds on import as on append (LIMIT-021), not exhaust the server.
describe("importing a hostile JSON Patch", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.close());

  it("refuses a self-doubling patch with DELTA_TOO_LARGE, quickly", async () => {
    const parts = await bundleOf("00000000-0000-4000-8000-0000000000aa", [[[{ op: "add", path: "/a", value: [0] }]], [Array.from({ length: 24 }, () => ({ op: "copy", from: "/a", path: "/a/-" }))]]);
    const session = await server.signIn("course-a", "mallory");
    const started = Date.now();
    expect(await importParts(server, session.token, parts)).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "DELTA_TOO_LARGE" });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  // What an append asks for is judged per append (LIMIT-021, LIMIT-023, LIMIT-024), and so per
  // appended batch on import (PORT-049), however many batches the importer stores at once.
  it("judges each appended batch's copies, deeper moves and shifts apart, and one batch's together", async () => {
    const max = 262_144; // the default max_delta_bytes
    const half = "y".repeat(Math.floor(max * 0.6));
    const items = Array.from({ length: 100_000 }, () => 0);
    const copy = (to: string) => [{ op: "copy", from: "/s", path: to }];
    const down = [{ op: "move", from: "/s", path: "/d/s" }];
    const up = [{ op: "move", from: "/d/s", path: "/s" }];
    const front = [{ op: "remove", path: "/l/0" }];
    // One batch of three deltas (versions 1-3; a delta's record index is its version here).
    const start = [[{ op: "add", path: "/s", value: half }], [{ op: "add", path: "/d", value: {} }], [{ op: "add", path: "/l", value: items }]];
    const many = <T,>(n: number, value: T): T[] => Array.from({ length: n }, () => value);
    const cases: { name: string; batches: unknown[][][]; refused?: { limit: number; index: number } }[] = [
      { name: "copies", batches: [start, [copy("/c1")], [copy("/c2")]] },
      { name: "copies", batches: [start, [copy("/c1"), copy("/c2")]], refused: { limit: max, index: 5 } },
      { name: "moves", batches: [start, [down], [up], [down]] },
      { name: "moves", batches: [start, [down, up, down]], refused: { limit: max, index: 6 } },
      // Removal k (from 0) of the 100,000 items shifts 99,999 - k: ten shift 999,945 items, at
      // most max_snapshot_bytes (1 MiB); the eleventh passes it.
      { name: "shifts", batches: [start, ...many(11, [front])] },
      { name: "shifts", batches: [start, many(11, front)], refused: { limit: 1_048_576, index: 14 } },
      // Thirty such batches: more than one transaction's bounds, so stored in several.
      { name: "shifts", batches: [start, ...many(30, [front])] },
      // One batch of 300 removals at the front of 4,000 items: the first 256 (what one run of
      // the importer holds) shift 991,104 items, all of them more than 1 MiB: judged whole.
      { name: "shifts", batches: [start, [[{ op: "add", path: "/m", value: Array.from({ length: 4_000 }, () => 0) }]], many(300, [{ op: "remove", path: "/m/0" }])], refused: { limit: 1_048_576, index: 5 + firstPast(4_000, 1_048_576) } },
    ];
    const local = await startTestServer({ limits: { maxSnapshotBytes: 1_048_576 } });
    try {
      for (const [n, c] of cases.entries()) {
        const uid = `00000000-0000-4000-8000-0000000001${String(n).padStart(2, "0")}`;
        const parts = await bundleOf(uid, c.batches);
        const session = await local.signIn("course-a", `importer-${n}`);
        const outcome = await importParts(local, session.token, parts);
        const label = `${c.name} in ${c.batches.length - 1} batches`;
        if (c.refused === undefined) {
          expect(outcome, label).toBeUndefined();
          const { stream } = await session.clients.stream.getStream({ name: `${session.subject}/streams/s` });
          expect(stream?.headVersion, `${label}: every delta stored`).toBe(BigInt(c.batches.flat().length));
        }
        else expect(outcome, label).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "DELTA_TOO_LARGE", metadata: { limit: String(c.refused.limit), index: String(c.refused.index) } });
      }
    } finally {
      await local.close();
    }
  });
});

/** ImportBundle of `parts`: undefined when it succeeds, else how it failed. */
async function importParts(server: TestServer, token: string, parts: readonly Uint8Array[]) {
  const channel = createChannel(server.address);
  try {
    return await createClientFactory().use(errorDetailsClientMiddleware).create(PortabilityServiceRawDefinition, channel)
      .importBundle((async function* () {
        yield* parts;
      })(), { metadata: Metadata({ authorization: `Bearer ${token}` }) })
      .then(() => undefined, describeFailure);
  } finally {
    channel.close();
  }
}

/** Index (from 0) of the removal at the front of `items` items after which more than `bound` have shifted. */
function firstPast(items: number, bound: number): number {
  let shifted = 0;
  for (let k = 0; ; k++) {
    shifted += items - k - 1;
    if (shifted > bound) return k;
  }
}

/** A signed bundle of one JSON Patch stream whose deltas were appended in `batches`. */
async function bundleOf(uid: string, batches: unknown[][][]) {
  const encoding = v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
  const genesis = genesisHash({ uid, type: "org.example.t", encoding });
  let hash = genesis;
  let version = 0;
  const deltas = batches.flatMap((batch) => {
    const first = version + 1;
    return batch.map((patch) => {
      const payload = Buffer.from(canonicalJson(patch as never));
      const prevHash = hash;
      version += 1;
      hash = deltaHash({ prevHash, version, encoding, payload });
      return v1.Delta.fromPartial({ streamUid: uid, version: BigInt(version), encoding, payload, prevHash: Buffer.from(prevHash), hash: Buffer.from(hash), batchFirstVersion: BigInt(first), batchSize: batch.length });
    });
  });
  const sealer = createBundleSealer();
  const { privateKey } = await import("jose").then((j) => j.generateKeyPair("ES256"));
  return [
    sealer.manifest({ formatVersion: 1, exporter: "test/1", createTime: new Date(), streams: [{ streamUid: uid, streamId: "s", type: "org.example.t", headVersion: BigInt(version), headHash: Buffer.from(hash), horizonVersion: 0n, deltaCount: BigInt(version) }] }),
    sealer.record({ record: { $case: "stream", value: v1.Stream.fromPartial({ name: "subjects/x/streams/s", uid, type: "org.example.t", encoding, conflictPolicy: 2, headVersion: BigInt(version), headHash: Buffer.from(hash), horizonHash: Buffer.from(genesis), ownerPlatform: "platforms/course-a" }) } }),
    ...deltas.map((d) => sealer.record({ record: { $case: "delta", value: d } })),
    await sealer.trailer({ privateKey, kid: "test", alg: "ES256" }),
  ];
}
