import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { describeFailure, failure, jsonBytes, startTestServer, type Session, type TestServer } from "../../src/testing/harness.js";
import { formatCursor, parseCursor } from "../../src/services/subscription-service.js";

const v1 = continuity.v1;
type Message = continuity.v1.SubscribeResponse;

let server: TestServer;
let ana: Session;

beforeEach(async () => {
  server = await startTestServer({ maintenanceIntervalMs: 0 });
  ana = await server.signIn("course-a", "ana");
});
afterEach(async () => {
  await server.close();
});

/** A live subscription read message by message. */
function open(session: Session, cursor = "", options: { heartbeatSeconds?: number; signal?: AbortSignal } = {}) {
  const controller = new AbortController();
  const signal = options.signal ?? controller.signal;
  const iterator = session.clients.subscription
    .subscribe(
      { parent: session.subject, cursor, heartbeatSeconds: options.heartbeatSeconds ?? 0 },
      { signal },
    )
    [Symbol.asyncIterator]();
  return {
    async next(): Promise<Message> {
      const result = await iterator.next();
      if (result.done === true) throw new Error("subscription ended");
      return result.value;
    },
    /** The next message that is not a heartbeat. */
    async event(): Promise<Message> {
      for (;;) {
        const message = await this.next();
        if (message.event?.$case !== "heartbeat") return message;
      }
    },
    /** Resolves with the error that ends the call. */
    async end(): Promise<ReturnType<typeof describeFailure> | "completed"> {
      try {
        for (;;) {
          const result = await iterator.next();
          if (result.done === true) return "completed";
        }
      } catch (error) {
        return describeFailure(error);
      }
    },
    cancel: () => controller.abort(),
  };
}

async function createStream(session: Session, id: string, type = "org.example.progress") {
  const { stream } = await session.clients.stream.createStream({
    parent: session.subject,
    streamId: id,
    stream: { type, encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  return stream!;
}

let sequence = 0;
function append(session: Session, stream: string, ...payloads: unknown[]) {
  sequence += 1;
  return session.clients.stream.appendDeltas({
    stream,
    clientSequence: BigInt(sequence),
    deltas: payloads.map((p) => ({ payload: jsonBytes(p) })),
  });
}
beforeEach(() => {
  sequence = 0;
});

function jsonOf(payload: Uint8Array): unknown {
  return JSON.parse(Buffer.from(payload).toString("utf8"));
}

/** Appends with an explicit client sequence, for tests writing to several streams. */
function appendAt(session: Session, stream: string, clientSequence: number, payload: unknown) {
  return session.clients.stream.appendDeltas({ stream, clientSequence: BigInt(clientSequence), deltas: [{ payload: jsonBytes(payload) }] });
}

describe("Subscribe", () => {
  it("starts with ready, then delivers a batch as one event with consecutive cursors", async () => {
    const sub = open(ana);
    const ready = await sub.next();
    expect(ready.event?.$case).toBe("ready");
    const stream = await createStream(ana, "p");
    await append(ana, stream.name, { a: 1 }, { b: 2 });
    const created = await sub.event();
    expect(created.event?.$case).toBe("streamCreated");
    const batch = await sub.event();
    expect(batch.event?.$case).toBe("deltasAppended");
    if (batch.event?.$case === "deltasAppended") expect(batch.event.value.deltas.map((d) => d.version)).toEqual([1n, 2n]);
    expect(parseCursor(batch.cursor)!.sequence).toBe(parseCursor(created.cursor)!.sequence + 1);
    sub.cancel();
  });

  it("publishes deletion and compaction as StreamDeleted and StreamCompacted", async () => {
    const stream = await createStream(ana, "p");
    await append(ana, stream.name, { a: 1 });
    const sub = open(ana);
    await sub.next();
    await ana.clients.stream.compactStream({ stream: stream.name, horizonVersion: 1n });
    await ana.clients.stream.deleteStream({ name: stream.name });
    const compacted = await sub.event();
    expect(compacted.event?.$case === "streamCompacted" && compacted.event.value.stream?.horizonVersion).toBe(1n);
    const deleted = await sub.event();
    expect(deleted.event?.$case === "streamDeleted" && deleted.event.value).toEqual({ stream: stream.name, streamUid: stream.uid });
    sub.cancel();
  });

  it("resumes after a cursor with no gap and no duplicate", async () => {
    const stream = await createStream(ana, "p");
    const first = open(ana);
    await first.next();
    await append(ana, stream.name, { n: 1 });
    const applied = await first.event();
    first.cancel();
    await append(ana, stream.name, { n: 2 });
    await append(ana, stream.name, { n: 3 });

    const resumed = open(ana, applied.cursor);
    const ready = await resumed.next();
    expect(ready.event?.$case).toBe("ready");
    expect(ready.cursor).toBe(applied.cursor);
    const versions: bigint[] = [];
    for (let i = 0; i < 2; i++) {
      const m = await resumed.event();
      if (m.event?.$case === "deltasAppended") versions.push(...m.event.value.deltas.map((d) => d.version));
    }
    // A live append after the catch-up arrives exactly once too.
    await append(ana, stream.name, { n: 4 });
    const live = await resumed.event();
    if (live.event?.$case === "deltasAppended") versions.push(...live.event.value.deltas.map((d) => d.version));
    expect(versions).toEqual([2n, 3n, 4n]);
    resumed.cancel();
  });

  it("answers reset EPOCH_CHANGED for a cursor of another epoch", async () => {
    const sub = open(ana, formatCursor({ epoch: "someotherepoch", sequence: 1 }));
    const first = await sub.next();
    expect(first.event?.$case).toBe("reset");
    if (first.event?.$case === "reset") {
      expect(first.event.value.reason).toBe(v1.ResetReason.RESET_REASON_EPOCH_CHANGED);
      expect(first.event.value.epoch).toBe(server.server.deps.epoch);
    }
    sub.cancel();
  });

  it("answers reset CURSOR_EXPIRED below the retained events, and continues from there", async () => {
    const start = open(ana);
    const old = (await start.next()).cursor;
    start.cancel();
    const stream = await createStream(ana, "p");
    for (let i = 0; i < 5; i++) await append(ana, stream.name, { n: i });
    await server.store.pruneEvents(2);
    const sub = open(ana, old);
    const first = await sub.next();
    expect(first.event?.$case).toBe("reset");
    if (first.event?.$case === "reset") expect(first.event.value.reason).toBe(v1.ResetReason.RESET_REASON_CURSOR_EXPIRED);
    await append(ana, stream.name, { n: 9 });
    const next = await sub.event();
    expect(parseCursor(next.cursor)!.sequence).toBe(parseCursor(first.cursor)!.sequence + 1);
    sub.cancel();
  });

  it("answers reset when deltas a cursor still needs were compacted", async () => {
    const stream = await createStream(ana, "p");
    const sub = open(ana);
    const ready = await sub.next();
    sub.cancel();
    for (let i = 0; i < 3; i++) await append(ana, stream.name, { n: i });
    await ana.clients.stream.compactStream({ stream: stream.name, horizonVersion: 2n });
    const resumed = open(ana, ready.cursor);
    const first = await resumed.next();
    expect(first.event?.$case).toBe("reset");
    resumed.cancel();
  });

  it("answers reset, never part of a batch, when the horizon fell inside a batch after the cursor", async () => {
    const stream = await createStream(ana, "p");
    const sub = open(ana);
    const ready = await sub.next();
    sub.cancel();
    await append(ana, stream.name, { a: 1 }, { b: 2 }, { c: 3 });
    await ana.clients.stream.compactStream({ stream: stream.name, horizonVersion: 2n });
    const resumed = open(ana, ready.cursor);
    const first = await resumed.next();
    expect(first.event?.$case === "reset" ? first.event.value.reason : first.event?.$case).toBe(v1.ResetReason.RESET_REASON_CURSOR_EXPIRED);
    resumed.cancel();
    // The store hands back a batch whole or not at all.
    const events = await server.store.readEvents(ana.subjectId, parseCursor(ready.cursor)!.sequence, 10);
    const batch = events.find((e) => e.body.kind === "deltas-appended");
    expect(batch?.body.kind === "deltas-appended" ? batch.body.deltas : undefined).toEqual([]);
  });

  it("answers reset when a compacted batch lies beyond the first page of the backlog", async () => {
    const busy = await createStream(ana, "busy");
    const late = await createStream(ana, "late");
    const sub = open(ana);
    const ready = await sub.next();
    sub.cancel();
    // More events than the subscription reads from the log in one round trip.
    for (let i = 1; i <= 300; i++) await appendAt(ana, busy.name, i, { i });
    await appendAt(ana, late.name, 1, { x: 1 });
    await ana.clients.stream.compactStream({ stream: late.name, horizonVersion: 1n });
    const resumed = open(ana, ready.cursor);
    const first = await resumed.next();
    expect(first.event?.$case === "reset" ? first.event.value.reason : first.event?.$case).toBe(v1.ResetReason.RESET_REASON_CURSOR_EXPIRED);
    resumed.cancel();
  });

  it("refuses cursors it did not mint for this subject, forged or altered", async () => {
    const stream = await createStream(ana, "p");
    for (let i = 0; i < 3; i++) await append(ana, stream.name, { n: i });
    const sub = open(ana);
    const real = (await sub.next()).cursor;
    sub.cancel();
    const parsed = parseCursor(real)!;
    const ben = await server.signIn("course-a", "ben");
    await createStream(ben, "q");
    for (let i = 1; i <= 6; i++) await appendAt(ben, `${ben.subject}/streams/q`, i, { n: i });
    const invalid = { code: "INVALID_ARGUMENT", reason: "INVALID_CURSOR" };
    // Built by hand in the current epoch, with a tag that was never issued.
    expect(await open(ana, formatCursor({ epoch: parsed.epoch, sequence: 1 })).end()).toMatchObject(invalid);
    // A real tag moved to another position.
    expect(await open(ana, formatCursor({ ...parsed, sequence: parsed.sequence - 2 })).end()).toMatchObject(invalid);
    // Another subject's genuine cursor is not a position in this subject's feed.
    expect(await open(ben, real).end()).toMatchObject(invalid);
    // The genuine cursor still resumes.
    const resumed = open(ana, real);
    expect((await resumed.next()).event?.$case).toBe("ready");
    resumed.cancel();
  });

  it("refuses an unparseable cursor with INVALID_CURSOR", async () => {
    const sub = open(ana, "not-a-cursor!");
    expect(await sub.end()).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_CURSOR" });
  });

  it("sends heartbeats carrying the newest cursor, also past filtered events", async () => {
    const ben = await server.link(ana, "course-b", "ana-on-b", { deviceId: "tv" });
    const sub = open(ben, "", { heartbeatSeconds: 1 });
    const ready = await sub.next();
    // A stream of course-a that course-b may not read: its events are filtered...
    const stream = await createStream(ana, "hidden");
    await append(ana, stream.name, { a: 1 });
    const heartbeat = await sub.next();
    expect(heartbeat.event?.$case).toBe("heartbeat");
    // ...but the cursor still moves past them.
    expect(parseCursor(heartbeat.cursor)!.sequence).toBe(parseCursor(ready.cursor)!.sequence + 2);
    sub.cancel();
  });

  it("delivers granted streams and ends with GRANT_REVOKED after access_revoked", async () => {
    const ben = await server.link(ana, "course-b", "ana-on-b", { deviceId: "tv" });
    const stream = await createStream(ana, "shared");
    const { grant } = await ana.clients.consent.createGrant({
      parent: ana.subject,
      grant: { granteePlatform: "platforms/course-b", streamType: "org.example.progress", access: 1 },
    });
    const sub = open(ben);
    await sub.next();
    await append(ana, stream.name, { a: 1 });
    expect((await sub.event()).event?.$case).toBe("deltasAppended");
    await ana.clients.consent.revokeGrant({ name: grant!.name });
    const revoked = await sub.event();
    expect(revoked.event?.$case).toBe("accessRevoked");
    if (revoked.event?.$case === "accessRevoked") {
      expect(revoked.event.value.grant).toBe(grant!.name);
      expect(revoked.event.value.streams).toEqual([stream.name]);
    }
    expect(await sub.end()).toMatchObject({ code: "PERMISSION_DENIED", reason: "GRANT_REVOKED" });
  });

  it("delivers a stream's events as soon as a grant made mid-subscription shares it", async () => {
    const ben = await server.link(ana, "course-b", "ana-on-b", { deviceId: "tv" });
    const stream = await createStream(ana, "later");
    const sub = open(ben, "", { heartbeatSeconds: 300 });
    await sub.next();
    await ana.clients.consent.createGrant({
      parent: ana.subject,
      grant: { granteePlatform: "platforms/course-b", streamType: "*", access: 1 },
    });
    await append(ana, stream.name, { a: 1 });
    const delivered = await sub.event();
    expect(delivered.event?.$case).toBe("deltasAppended");
    sub.cancel();
  });

  it("ends with DEVICE_REVOKED when the device is revoked", async () => {
    const phone = await server.signIn("course-a", "ana", { deviceId: "phone" });
    const sub = open(phone);
    await sub.next();
    await ana.clients.device.revokeDevice({ name: `${ana.subject}/devices/phone` });
    const end = await sub.end();
    expect(end).toMatchObject({ code: "PERMISSION_DENIED", reason: "DEVICE_REVOKED" });
  });

  it("ends with TOKEN_REVOKED when the subject is erased", async () => {
    const sub = open(ana);
    await sub.next();
    const admin = await server.signIn("course-a", "ana", { deviceId: "laptop" });
    await admin.clients.subject.deleteSubject({ name: ana.subject });
    expect(await sub.end()).toMatchObject({ code: "UNAUTHENTICATED", reason: "TOKEN_REVOKED" });
  });

  it("ends with TOKEN_REVOKED when the platform's account link is removed", async () => {
    const onB = await server.link(ana, "course-b", "ana-on-b", { deviceId: "tv" });
    const sub = open(onB);
    await sub.next();
    const admin = await server.signIn("course-a", "ana", { deviceId: "laptop" });
    const { accountLinks } = await admin.clients.subject.listAccountLinks({ parent: ana.subject, pageSize: 0, pageToken: "" });
    const bLink = accountLinks.find((l) => l.platform === "platforms/course-b")!;
    await admin.clients.subject.deleteAccountLink({ name: bLink.name });
    expect(await sub.end()).toMatchObject({ code: "UNAUTHENTICATED", reason: "TOKEN_REVOKED" });
  });

  it("cuts a subscriber that does not keep up, without slowing writers", async () => {
    await server.close();
    server = await startTestServer({ maintenanceIntervalMs: 0, subscriptions: { queueLimit: 5 } });
    ana = await server.signIn("course-a", "ana");
    const stream = await createStream(ana, "p");
    const sub = open(ana);
    await sub.next();
    // The subscriber reads nothing while many events commit.
    for (let i = 0; i < 200; i++) await append(ana, stream.name, { n: i, pad: "x".repeat(2000) });
    expect(await sub.end()).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SUBSCRIBER_TOO_SLOW" });
  });

  it("does not cut a prompt reader whose catch-up outlasts its live buffer", async () => {
    await server.close();
    const queueLimit = 5;
    server = await startTestServer({ maintenanceIntervalMs: 0, subscriptions: { queueLimit } });
    ana = await server.signIn("course-a", "ana");
    const stream = await createStream(ana, "p");
    const start = open(ana);
    const cursor = (await start.next()).cursor;
    start.cancel();
    // A backlog several times the live buffer, heavy enough that the replay cannot run ahead
    // of the reader through the transport's buffers: it is still replaying while we append.
    const backlog = 12 * queueLimit;
    const pad = "x".repeat(16 * 1024);
    for (let n = 1; n <= backlog; n++) await append(ana, stream.name, { n, pad });

    const sub = open(ana, cursor);
    expect((await sub.next()).event?.$case).toBe("ready");
    const seen: number[] = [];
    const sequences: number[] = [];
    const live = 6 * queueLimit;
    let appended = backlog;
    const total = backlog + live;
    while (seen.length < total) {
      const message = await sub.event();
      expect(message.event?.$case).toBe("deltasAppended");
      if (message.event?.$case !== "deltasAppended") break;
      for (const delta of message.event.value.deltas) seen.push((jsonOf(delta.payload) as { n: number }).n);
      sequences.push(parseCursor(message.cursor)!.sequence);
      // A busy subject: every event read lets another commit while the replay is under way.
      if (appended < total) await append(ana, stream.name, { n: ++appended });
    }
    expect(seen).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    expect(new Set(sequences).size).toBe(sequences.length);
    // Still live, not cut: a later append arrives too.
    await append(ana, stream.name, { n: total + 1 });
    const next = await sub.event();
    expect(next.event?.$case === "deltasAppended" && next.event.value.deltas.length).toBe(1);
    expect(parseCursor(next.cursor)!.sequence).toBe(sequences.at(-1)! + 1);
    sub.cancel();
  });

  it("ends with TOKEN_REVOKED when the subject is erased during a catch-up that dropped its live buffer", async () => {
    await server.close();
    const queueLimit = 5;
    server = await startTestServer({ maintenanceIntervalMs: 0, subscriptions: { queueLimit } });
    ana = await server.signIn("course-a", "ana");
    const stream = await createStream(ana, "p");
    const start = open(ana);
    const cursor = (await start.next()).cursor;
    start.cancel();
    const pad = "x".repeat(16 * 1024);
    for (let n = 1; n <= 12 * queueLimit; n++) await append(ana, stream.name, { n, pad });
    const sub = open(ana, cursor);
    expect((await sub.next()).event?.$case).toBe("ready");
    // Overflow the live buffer while the replay is stalled on the unread transport, then erase.
    for (let n = 0; n < 2 * queueLimit; n++) await append(ana, stream.name, { live: n });
    const admin = await server.signIn("course-a", "ana", { deviceId: "laptop" });
    await admin.clients.subject.deleteSubject({ name: ana.subject });
    expect(await sub.end()).toMatchObject({ code: "UNAUTHENTICATED", reason: "TOKEN_REVOKED" });
  });

  it("cuts a catch-up that retention overtook, never sending past the gap", async () => {
    const stream = await createStream(ana, "p");
    const start = open(ana);
    const cursor = (await start.next()).cursor;
    start.cancel();
    // More than one page of replay, heavy enough that the replay is still under way below.
    const backlog = 300;
    const pad = "x".repeat(16 * 1024);
    for (let n = 1; n <= backlog; n++) await append(ana, stream.name, { n, pad });

    const sub = open(ana, cursor);
    expect((await sub.next()).event?.$case).toBe("ready");
    await server.store.pruneEvents(10);
    let last = cursor;
    let expected = 1;
    let end: Awaited<ReturnType<typeof sub.end>> | undefined;
    while (end === undefined) {
      let message: Message;
      try {
        message = await sub.event();
      } catch (error) {
        end = describeFailure(error);
        break;
      }
      // Whatever was sent before the cut is the feed without a gap.
      expect(message.event?.$case === "deltasAppended" && jsonOf(message.event.value.deltas[0]!.payload)).toMatchObject({ n: expected });
      expected++;
      last = message.cursor;
    }
    expect(end).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SUBSCRIBER_TOO_SLOW" });
    // SUB-031: resubscribing with the last cursor received re-bases instead of skipping.
    const resumed = open(ana, last);
    const first = await resumed.next();
    expect(first.event?.$case === "reset" ? first.event.value.reason : first.event?.$case).toBe(v1.ResetReason.RESET_REASON_CURSOR_EXPIRED);
    resumed.cancel();
  });

  it("stops on cancel and on deadline, and detaches from the hub", async () => {
    const sub = open(ana);
    await sub.next();
    expect(server.server.deps.events.size).toBe(1);
    sub.cancel();
    // A client that cancels sees its own AbortError; the server must notice and detach.
    expect(await sub.end()).toMatchObject({ code: expect.stringContaining("AbortError") });
    await expect.poll(() => server.server.deps.events.size).toBe(0);
    // nice-grpc clients need a middleware for deadlines; grpc-js sends them natively.
    const status = await new Promise<number>((resolve) => {
      const raw = new grpc.Client(server.address, grpc.credentials.createInsecure());
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${ana.token}`);
      const call = raw.makeServerStreamRequest(
        `/continuity.v1.SubscriptionService/Subscribe`,
        (request: continuity.v1.SubscribeRequest) => Buffer.from(v1.SubscribeRequest.encode(request).finish()),
        (bytes: Buffer) => v1.SubscribeResponse.decode(bytes),
        { parent: ana.subject, cursor: "", heartbeatSeconds: 0 },
        metadata,
        { deadline: new Date(Date.now() + 300) },
      );
      call.on("data", () => undefined);
      call.on("error", (error: grpc.ServiceError) => {
        raw.close();
        resolve(error.code);
      });
    });
    expect(status).toBe(grpc.status.DEADLINE_EXCEEDED);
    await expect.poll(() => server.server.deps.events.size).toBe(0);
  });

  it("needs a device-bound token", async () => {
    const unbound = await server.signIn("course-a", "ana", { deviceId: null });
    expect(await failure(open(unbound).next())).toMatchObject({ code: "FAILED_PRECONDITION", reason: "DEVICE_REQUIRED" });
  });

  it("does not let a subscriber that stopped reading hold shutdown forever", async () => {
    await server.close();
    server = await startTestServer({ maintenanceIntervalMs: 0, shutdownGraceMs: 200 });
    ana = await server.signIn("course-a", "ana");
    const stream = await createStream(ana, "p");
    const sub = open(ana);
    await sub.next();
    // Fill the transport so the server blocks writing to this subscriber.
    for (let i = 0; i < 100; i++) await append(ana, stream.name, { n: i, pad: "x".repeat(4000) });
    await server.server.shutdown();
    sub.cancel();
  });

  it("ends live subscriptions with SHUTTING_DOWN on shutdown", async () => {
    const sub = open(ana);
    await sub.next();
    const ending = sub.end();
    await server.server.shutdown();
    expect(await ending).toMatchObject({ code: "UNAVAILABLE", reason: "SHUTTING_DOWN" });
  });
});
