import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { collect, failure, jsonBytes, startTestServer, type Session, type TestServer } from "../../src/testing/harness.js";

// Each replica holds the head states of JSON streams in memory (services/json-heads.ts). Two
// servers on one PostgreSQL schema behind a per-call round-robin proxy: consecutive appends
// land on different replicas, so each one finds the head it holds moved by the other.
const v1 = continuity.v1;

let server: TestServer;
let ana: Session;

beforeEach(async () => {
  server = await startTestServer({ replicas: 2, maintenanceIntervalMs: 0 });
  ana = await server.signIn("course-a", "ana", { deviceId: "laptop" });
});
afterEach(async () => {
  await server.close();
});

async function snapshotState(stream: string): Promise<unknown> {
  const parts = await collect(ana.clients.stream.getSnapshot({ stream }));
  return JSON.parse(Buffer.concat(parts.slice(1).map((p) => (p.part?.$case === "data" ? p.part.value : Buffer.alloc(0)))).toString("utf8"));
}

describe("held head states across replicas", () => {
  it("apply each append on the head the database holds, whichever replica wrote the one before", async () => {
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: "list",
      stream: { type: "org.example.list", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
    });
    const name = stream!.name;
    const append = (sequence: number, patch: unknown) =>
      ana.clients.stream.appendDeltas({ stream: name, clientSequence: BigInt(sequence), deltas: [{ payload: jsonBytes(patch) }] });
    await append(1, [{ op: "add", path: "/items", value: [] }, { op: "add", path: "/last", value: 0 }]);
    const before = [...server.proxy!.calls];
    // Every patch tests the value the one before wrote, so a replica applying it to the head it
    // held from its own last append (two versions old) fails the test and refuses the append.
    for (let i = 1; i <= 12; i++) {
      await append(i + 1, [
        { op: "test", path: "/last", value: i - 1 },
        { op: "add", path: "/items/-", value: i },
        { op: "replace", path: "/last", value: i },
      ]);
    }
    expect(server.proxy!.calls.map((n, k) => n - before[k]!).every((n) => n >= 6)).toBe(true);
    expect(await snapshotState(name)).toEqual({ items: Array.from({ length: 12 }, (_, i) => i + 1), last: 12 });
    // Refused batches leave the held heads as they were, on either replica.
    const refused = await failure(append(14, [{ op: "add", path: "/items/-", value: 99 }, { op: "test", path: "/last", value: 0 }]));
    expect(refused.reason).toBe("PATCH_NOT_APPLICABLE");
    await append(14, [{ op: "test", path: "/last", value: 12 }, { op: "remove", path: "/items/0" }]);
    await append(15, [{ op: "test", path: "/items/0", value: 2 }]);
    expect(await snapshotState(name)).toEqual({ items: Array.from({ length: 11 }, (_, i) => i + 2), last: 12 });
  });

  it("follow concurrent blind appends from both replicas to one stream", async () => {
    const phone = await server.signIn("course-a", "ana", { deviceId: "phone" });
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: "counts",
      stream: { type: "org.example.counts", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
    });
    const name = stream!.name;
    await Promise.all(
      [ana, phone].map(async (device, d) => {
        for (let i = 1; i <= 15; i++) {
          await device.clients.stream.appendDeltas({ stream: name, clientSequence: BigInt(i), deltas: [{ payload: jsonBytes({ [`d${d}`]: i, [`d${d}-${i}`]: true }) }] });
        }
      }),
    );
    const expected: Record<string, unknown> = { d0: 15, d1: 15 };
    for (let d = 0; d < 2; d++) for (let i = 1; i <= 15; i++) expected[`d${d}-${i}`] = true;
    expect(await snapshotState(name)).toEqual(expected);
    // Both replicas hold the head now and agree with the history.
    for (let i = 0; i < 2; i++) expect(await snapshotState(name)).toEqual(expected);
  });
});
