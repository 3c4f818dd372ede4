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
    const uid = "00000000-0000-4000-8000-0000000000aa";
    const encoding = v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
    const genesis = genesisHash({ uid, type: "org.example.t", encoding });
    const payloads = [[{ op: "add", path: "/a", value: [0] }], Array.from({ length: 24 }, () => ({ op: "copy", from: "/a", path: "/a/-" }))].map((p) => Buffer.from(canonicalJson(p)));
    let hash = genesis;
    const deltas = payloads.map((payload, i) => {
      const prevHash = hash;
      hash = deltaHash({ prevHash, version: i + 1, encoding, payload });
      return v1.Delta.fromPartial({ streamUid: uid, version: BigInt(i + 1), encoding, payload, prevHash: Buffer.from(prevHash), hash: Buffer.from(hash), batchFirstVersion: BigInt(i + 1), batchSize: 1 });
    });
    const sealer = createBundleSealer();
    const { privateKey } = await import("jose").then((j) => j.generateKeyPair("ES256"));
    const parts = [
      sealer.manifest({ formatVersion: 1, exporter: "hostile/1", createTime: new Date(), streams: [{ streamUid: uid, streamId: "boom", type: "org.example.t", headVersion: 2n, headHash: Buffer.from(hash), horizonVersion: 0n, deltaCount: 2n }] }),
      sealer.record({ record: { $case: "stream", value: v1.Stream.fromPartial({ name: "subjects/x/streams/boom", uid, type: "org.example.t", encoding, conflictPolicy: 2, headVersion: 2n, headHash: Buffer.from(hash), horizonHash: Buffer.from(genesis), ownerPlatform: "platforms/course-a" }) } }),
      ...deltas.map((d) => sealer.record({ record: { $case: "delta", value: d } })),
      await sealer.trailer({ privateKey, kid: "hostile", alg: "ES256" }),
    ];
    const session = await server.signIn("course-a", "mallory");
    const channel = createChannel(server.address);
    const started = Date.now();
    try {
      const outcome = await createClientFactory().use(errorDetailsClientMiddleware).create(PortabilityServiceRawDefinition, channel)
        .importBundle((async function* () {
          yield* parts;
        })(), { metadata: Metadata({ authorization: `Bearer ${session.token}` }) })
        .then(() => undefined, describeFailure);
      expect(outcome).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "DELTA_TOO_LARGE" });
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      channel.close();
    }
  });
});
