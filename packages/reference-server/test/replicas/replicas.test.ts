import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { describeFailure, failure, jsonBytes, startTestServer, type Session, type TestServer } from "../../src/testing/harness.js";

// Two servers on one PostgreSQL schema behind a per-call round-robin proxy: every call goes to
// the other server than the one before, so each check below crosses replicas.
const v1 = continuity.v1;
type Message = continuity.v1.SubscribeResponse;

let server: TestServer;
let ana: Session;

beforeEach(async () => {
  server = await startTestServer({ replicas: 2, maintenanceIntervalMs: 0 });
  ana = await server.signIn("course-a", "ana", { deviceId: "laptop" });
});
afterEach(async () => {
  await server.close();
});

function subscribe(session: Session, cursor = "") {
  const controller = new AbortController();
  const iterator = session.clients.subscription.subscribe({ parent: session.subject, cursor, heartbeatSeconds: 1 }, { signal: controller.signal })[Symbol.asyncIterator]();
  return {
    async event(): Promise<Message> {
      for (;;) {
        const result = await iterator.next();
        if (result.done === true) throw new Error("subscription ended");
        if (result.value.event?.$case !== "heartbeat") return result.value;
      }
    },
    async end() {
      try {
        for (;;) if ((await iterator.next()).done === true) return "completed";
      } catch (error) {
        return describeFailure(error);
      }
    },
    cancel: () => controller.abort(),
  };
}

async function createStream(session: Session, id: string) {
  const { stream } = await session.clients.stream.createStream({
    parent: session.subject,
    streamId: id,
    stream: { type: "org.example.progress", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  return stream!.name;
}

describe("two replicas on one database", () => {
  it("deliver, in order and without gap or duplicate, what devices write through both", async () => {
    const phone = await server.signIn("course-a", "ana", { deviceId: "phone" });
    const stream = await createStream(ana, "notes");
    const live = subscribe(phone);
    expect((await live.event()).event?.$case).toBe("ready");
    const before = [...server.proxy!.calls];
    // Two devices write at once; the proxy alternates their calls between the replicas.
    await Promise.all(
      [ana, phone].map(async (device, d) => {
        for (let i = 1; i <= 15; i++) await device.clients.stream.appendDeltas({ stream, clientSequence: BigInt(i), deltas: [{ payload: jsonBytes({ [`d${d}`]: i }) }] });
      }),
    );
    const seen: bigint[] = [];
    while (seen.length < 30) {
      const message = await live.event();
      if (message.event?.$case === "deltasAppended") seen.push(...message.event.value.deltas.map((delta) => delta.version));
    }
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => BigInt(i + 1)));
    // Both replicas took writes.
    expect(server.proxy!.calls.map((n, i) => n - before[i]!).every((n) => n >= 10)).toBe(true);
    live.cancel();
  });

  it("serialize a client sequence retried through the other replica, and optimistic concurrency, in the database", async () => {
    const stream = await createStream(ana, "cart");
    const request = { stream, clientSequence: 1n, deltas: [{ payload: jsonBytes({ a: 1 }) }] };
    const [first, retry] = await Promise.all([ana.clients.stream.appendDeltas(request), ana.clients.stream.appendDeltas(request)]);
    expect([first.replayed, retry.replayed].sort()).toEqual([false, true]);
    expect(retry.headVersion).toBe(first.headVersion);
    const stale = { stream, expectedVersion: 1n, deltas: [{ payload: jsonBytes({ b: 1 }) }] };
    const phone = await server.signIn("course-a", "ana", { deviceId: "phone" });
    const outcomes = await Promise.allSettled([
      ana.clients.stream.appendDeltas({ ...stale, clientSequence: 2n }),
      phone.clients.stream.appendDeltas({ ...stale, clientSequence: 1n }),
    ]);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === "rejected");
    expect(describeFailure(refused?.status === "rejected" ? refused.reason : undefined)).toMatchObject({ code: "ABORTED", reason: "VERSION_CONFLICT" });
  });

  it("accept each other's page tokens and cursors", async () => {
    for (const id of ["a", "b", "c"]) await createStream(ana, id);
    const first = await ana.clients.stream.listStreams({ parent: ana.subject, pageSize: 1, pageToken: "", type: "" });
    const second = await ana.clients.stream.listStreams({ parent: ana.subject, pageSize: 1, pageToken: first.nextPageToken, type: "" });
    const third = await ana.clients.stream.listStreams({ parent: ana.subject, pageSize: 1, pageToken: second.nextPageToken, type: "" });
    expect([first, second, third].map((p) => p.streams[0]?.name.split("/").pop())).toEqual(["a", "b", "c"]);

    const live = subscribe(ana);
    const ready = await live.event();
    live.cancel();
    await ana.clients.stream.appendDeltas({ stream: `${ana.subject}/streams/a`, clientSequence: 1n, deltas: [{ payload: jsonBytes({ x: 1 }) }] });
    const resumed = subscribe(ana, ready.cursor);
    expect((await resumed.event()).event?.$case).toBe("ready");
    const next = await resumed.event();
    expect(next.event?.$case === "deltasAppended" && next.event.value.deltas.map((d) => d.version)).toEqual([1n]);
    resumed.cancel();
  });

  it("end a device's subscriptions on every replica when it is revoked, and offer handoffs to devices on either", async () => {
    const phone = await server.signIn("course-a", "ana", { deviceId: "phone" });
    const tablet = await server.signIn("course-a", "ana", { deviceId: "tablet" });
    const stream = await createStream(ana, "book");
    await ana.clients.stream.appendDeltas({ stream, clientSequence: 1n, deltas: [{ payload: jsonBytes({ page: 1 }) }] });
    // Two subscriptions of the phone, and one of the tablet: consecutive calls, so on both replicas.
    const phoneFeeds = [subscribe(phone), subscribe(phone)];
    const tabletFeed = subscribe(tablet);
    for (const feed of [...phoneFeeds, tabletFeed]) expect((await feed.event()).event?.$case).toBe("ready");

    const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "cp", streams: [{ stream }] });
    await ana.clients.checkpoint.offerHandoff({ parent: ana.subject, checkpoint: checkpoint!.name, targetDevice: "", ttlSeconds: 0 });
    for (const feed of [...phoneFeeds, tabletFeed]) expect((await feed.event()).event?.$case).toBe("handoffOffered");

    await ana.clients.device.revokeDevice({ name: `${ana.subject}/devices/phone` });
    for (const feed of phoneFeeds) expect(await feed.end()).toMatchObject({ code: "PERMISSION_DENIED", reason: "DEVICE_REVOKED" });
    expect(await failure(phone.clients.stream.getStream({ name: stream }))).toMatchObject({ code: "UNAUTHENTICATED" });
    tabletFeed.cancel();
  });
});
