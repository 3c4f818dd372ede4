/**
 * LIMIT-020: a JSON stream's state is bounded by max_snapshot_bytes; LIMIT-021: what an
 * append's copies insert counts against max_delta_bytes. Issue 10 defect 1: a 1 KB JSON Patch
 * of self-doubling copies took 11.8 s and 2.7 GB (k = 24) or killed the process (k = 27), with
 * every other call waiting.
 */
import { afterEach, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { collect, failure, jsonBytes, startTestServer, type TestServer } from "../../src/testing/harness.js";

const v1 = continuity.v1;
const JSON_PATCH = v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
const BLIND = v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND;

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** `[add /a [0], copy /a → /a/- × copies]`: the state doubles at each copy. */
function doublingPatch(copies: number): unknown[] {
  return [{ op: "add", path: "/a", value: [0] }, ...Array.from({ length: copies }, () => ({ op: "copy", from: "/a", path: "/a/-" }))];
}

async function setUp(limits?: { maxSnapshotBytes: number }) {
  server = await startTestServer({ maintenanceIntervalMs: 0, ...(limits === undefined ? {} : { limits }) });
  const ana = await server.signIn("course-a", "ana");
  const { stream } = await ana.clients.stream.createStream({
    parent: ana.subject,
    streamId: "doc",
    stream: { type: "org.example.doc", encoding: JSON_PATCH, conflictPolicy: BLIND },
  });
  let sequence = 0;
  // A refused append does not use up its client sequence.
  const append = async (payloads: unknown[]) => {
    const response = await ana.clients.stream.appendDeltas({
      stream: stream!.name,
      clientSequence: BigInt(sequence + 1),
      deltas: payloads.map((p) => ({ payload: jsonBytes(p) })),
    });
    sequence++;
    return response;
  };
  return { ana, stream: stream!, append };
}

describe("LIMIT-020, LIMIT-021: the state of a JSON stream and the work of an append are bounded", () => {
  it("refuses a 1 KB self-doubling patch quickly with DELTA_TOO_LARGE, with no effect, while other calls are answered", async () => {
    const { ana, stream, append } = await setUp();
    const hostile = append([doublingPatch(40)]);
    // GetServerInfo sent right behind the hostile append must not wait for it for long.
    const started = performance.now();
    const info = await server!.anonymous.serverInfo.getServerInfo({});
    const infoMs = performance.now() - started;
    const refused = await failure(hostile);
    expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "DELTA_TOO_LARGE", metadata: { index: "0" } });
    expect(refused.metadata["limit"]).toBe(String(info.limits!.maxDeltaBytes));
    // Before the bound it waited 11.8 s behind the patch; 2 s leaves room for a loaded CI machine.
    expect(infoMs).toBeLessThan(2000);
    const after = await ana.clients.stream.getStream({ name: stream.name });
    expect(after.stream!.headVersion).toBe(0n);
  });

  it("accepts a state exactly at the bound and refuses one byte more, across deltas of a batch", async () => {
    const limit = 65_536;
    const { ana, stream, append } = await setUp({ maxSnapshotBytes: limit });
    // {"s":"xxx…"} is 8 bytes plus the string.
    const exact = "x".repeat(limit - 8);
    await append([[{ op: "add", path: "/s", value: exact.slice(0, 100) }], [{ op: "replace", path: "/s", value: exact }]]);
    const parts = await collect(ana.clients.stream.getSnapshot({ stream: stream.name }));
    const header = parts[0]?.part?.$case === "header" ? parts[0].part.value : undefined;
    expect(header?.sizeBytes).toBe(BigInt(limit));
    const refused = await failure(append([[{ op: "add", path: "/t", value: 1 }]]));
    expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SNAPSHOT_TOO_LARGE", metadata: { limit: String(limit) } });
    // A small doubling patch against a small bound is refused before the state grows.
    const small = await failure(append([[{ op: "remove", path: "/s" }, ...doublingPatch(30)]]));
    expect(small).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SNAPSHOT_TOO_LARGE" });
    expect((await ana.clients.stream.getStream({ name: stream.name })).stream!.headVersion).toBe(2n);
  });

  it("counts the copies of all deltas of a batch against max_delta_bytes, and accepts copies up to it", async () => {
    const { ana, stream, append } = await setUp();
    const info = await server!.anonymous.serverInfo.getServerInfo({});
    const maxDelta = Number(info.limits!.maxDeltaBytes);
    // A string member whose copy inserts just under half the bound.
    const half = "y".repeat(Math.floor(maxDelta / 2) - 10);
    await append([[{ op: "add", path: "/s", value: half }]]);
    const copy = (to: string) => [{ op: "copy", from: "/s", path: to }];
    await append([copy("/c1")]);
    const refused = await failure(append([copy("/c2"), copy("/c3"), copy("/c4")]));
    expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "DELTA_TOO_LARGE", metadata: { index: "2", limit: String(maxDelta) } });
    expect((await ana.clients.stream.getStream({ name: stream.name })).stream!.headVersion).toBe(2n);
    await append([copy("/c2"), copy("/c3")]);
    expect((await ana.clients.stream.getStream({ name: stream.name })).stream!.headVersion).toBe(4n);
  });

  it("bounds a merge-patch stream's state too", async () => {
    const limit = 65_536;
    server = await startTestServer({ maintenanceIntervalMs: 0, limits: { maxSnapshotBytes: limit } });
    const ana = await server.signIn("course-a", "ana");
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: "merge",
      stream: { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: BLIND },
    });
    const big = (key: string) => ({ [key]: "z".repeat(40_000) });
    const send = (seq: number, patch: unknown) =>
      ana.clients.stream.appendDeltas({ stream: stream!.name, clientSequence: BigInt(seq), deltas: [{ payload: jsonBytes(patch) }] });
    await send(1, big("a"));
    const refused = await failure(send(2, big("b")));
    expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SNAPSHOT_TOO_LARGE", metadata: { limit: String(limit) } });
    await send(2, { a: null, ...big("b") });
  });
});
