import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, checkError, fail, Status } from "../harness/expect.js";
import * as grpc from "@grpc/grpc-js";
import type { continuity } from "@continuity/sdk/gen";
import { richErrorOf } from "../harness/raw-call.js";
import { append, createStream, ENCODING } from "../harness/streams.js";
import { cursorNow, openSubscription } from "../harness/subscription.js";
import { v1 } from "../harness/clients.js";
import type { Session } from "../harness/context.js";

const SUBSCRIBE_PATH = "/continuity.v1.SubscriptionService/Subscribe";

/**
 * Subscribe at the head as a plain grpc-js server stream, whose reading the client controls
 * (`pause`, `resume`), unlike the harness's reader, which takes every message as it comes.
 */
function rawSubscribe(address: string, credentials: grpc.ChannelCredentials, session: Session, heartbeatSeconds: number) {
  const client = new grpc.Client(address, credentials);
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${session.token}`);
  const call = client.makeServerStreamRequest(
    SUBSCRIBE_PATH,
    (request: continuity.v1.SubscribeRequest) => Buffer.from(v1.SubscribeRequest.encode(request).finish()),
    (bytes: Buffer) => v1.SubscribeResponse.decode(bytes),
    { parent: session.subject, cursor: "", heartbeatSeconds },
    metadata,
  );
  return { client, call };
}

/**
 * Resubscribes with `cursor`, whose following events include deltas now below a horizon: the
 * first message must be reset CURSOR_EXPIRED (never ready and a partial or failing feed),
 * and the reset's cursor must then be answered with ready.
 */
async function expectCursorExpired(session: Session, cursor: string, signal: AbortSignal, what: string): Promise<void> {
  const sub = openSubscription(session, cursor, signal);
  let resetCursor: string;
  try {
    const first = await sub.nextEvent();
    if (first.event?.$case !== "reset") fail(`${what} must be answered with reset, got ${first.event?.$case ?? "nothing"}`);
    checkEqual(first.event.value.reason, v1.ResetReason.RESET_REASON_CURSOR_EXPIRED, `reset reason for ${what}`);
    resetCursor = first.cursor;
  } finally {
    sub.close();
  }
  const again = openSubscription(session, resetCursor, signal);
  try {
    await again.expectEvent("ready", { skipOthers: false });
  } finally {
    again.close();
  }
}

/** The live feed: ready/reset, batches as one event, resumption without gap or duplicate. */
export const SUBSCRIPTION_CASES = [
  defineCase({
    id: "subscription.ready-and-batch-as-one-event",
    requirements: ["SUB-001", "SUB-002", "SUB-008", "SUB-010", "SUB-012", "SUB-013", "APPEND-032", "GEN-004", "GEN-013"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const sub = openSubscription(session, "", ctx.signal);
      try {
        const ready = await sub.expectEvent("ready");
        check(ready.cursor !== "", "ready must carry a cursor");
        const { epoch } = await session.clients.serverInfo.getServerInfo({});
        checkEqual(ready.event.value.epoch, epoch, "ready.epoch equals ServerInfo.epoch");
        const stream = await createStream(ctx, session);
        const created = await sub.expectEvent("streamCreated");
        checkEqual(created.event.value.stream?.uid, stream.uid, "StreamCreated.stream");
        const batch = await append(session, stream.name, [{ a: 1 }, { b: 2 }, { c: 3 }], { clientSequence: 1 });
        const appended = await sub.expectEvent("deltasAppended");
        checkEqual(appended.event.value.deltas.map((d) => d.version), batch.receipts.map((r) => r.version), "one DeltasAppended event holds the whole batch");
        checkEqual(appended.event.value.deltas.map((d) => [d.batchFirstVersion, d.batchSize]), [[1n, 3], [1n, 3], [1n, 3]], "batch fields in the event");
        await append(session, stream.name, [{ d: 4 }], { clientSequence: 2 });
        const next = await sub.expectEvent("deltasAppended");
        checkEqual(next.event.value.deltas.map((d) => d.version), [4n], "the next batch is its own event");
        await session.clients.streams.deleteStream({ name: stream.name });
        const deleted = await sub.expectEvent("streamDeleted");
        checkEqual(deleted.event.value.streamUid, stream.uid, "StreamDeleted.stream_uid");
        for (const message of sub.received) check(message.cursor !== "", "every message must carry a cursor");
      } finally {
        sub.close();
      }
    },
  }),
  defineCase({
    id: "subscription.resume-no-gap-no-duplicate",
    requirements: ["SUB-003", "SUB-009", "SUB-011", "SUB-007"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      const first = openSubscription(session, "", ctx.signal);
      let seq = 1;
      const cursors: string[] = [];
      try {
        await first.expectEvent("ready");
        for (; seq <= 4; seq++) {
          await append(session, stream.name, [{ n: seq }], { clientSequence: seq });
          const event = await first.expectEvent("deltasAppended");
          cursors.push(event.cursor);
        }
      } finally {
        first.close();
      }
      // Written while nobody listened; a resumed subscription must deliver them too.
      for (; seq <= 6; seq++) await append(session, stream.name, [{ n: seq }], { clientSequence: seq });
      for (const [index, cursor] of cursors.entries()) {
        const resumed = openSubscription(session, cursor, ctx.signal);
        try {
          const ready = await resumed.expectEvent("ready");
          checkEqual(ready.cursor, cursor, "ready.cursor of a resumed subscription equals the given cursor");
          const versions: bigint[] = [];
          while (versions.length < 6 - (index + 1)) {
            const event = await resumed.expectEvent("deltasAppended");
            versions.push(...event.event.value.deltas.map((d) => d.version));
          }
          const expected = Array.from({ length: 6 - (index + 1) }, (_, i) => BigInt(index + 2 + i));
          checkEqual(versions, expected, `versions delivered after the cursor of version ${index + 1}`);
          await resumed.expectQuiet(200);
        } finally {
          resumed.close();
        }
      }
    },
  }),
  defineCase({
    id: "subscription.garbage-cursor-invalid",
    requirements: ["SUB-004"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      for (const cursor of ["not-a-cursor", "%%%", "\u0000\u0001", "A".repeat(40)]) {
        const sub = openSubscription(session, cursor, ctx.signal);
        try {
          const error = await sub.ended();
          if (error === undefined) fail(`cursor ${JSON.stringify(cursor)} must fail the call`);
          checkError(error, { code: Status.INVALID_ARGUMENT, reason: "INVALID_CURSOR" }, `Subscribe with garbage cursor ${JSON.stringify(cursor.slice(0, 20))}`);
          checkEqual(sub.received.length, 0, "messages sent before INVALID_CURSOR");
        } finally {
          sub.close();
        }
      }
    },
  }),
  defineCase({
    id: "subscription.cursor-of-another-subject-invalid",
    requirements: ["SUB-004"],
    profile: "core",
    async run(ctx) {
      const alice = await ctx.session();
      const cursor = await cursorNow(alice, ctx.signal);
      // Bob's feed is longer than Alice's, so a server that read her cursor as a bare
      // position would find it inside his feed and answer ready.
      const bob = await ctx.session();
      for (let i = 0; i < 3; i++) await createStream(ctx, bob);
      const sub = openSubscription(bob, cursor, ctx.signal);
      try {
        const error = await sub.ended();
        if (error === undefined) fail("a cursor minted for another subject must fail the call");
        checkError(error, { code: Status.INVALID_ARGUMENT, reason: "INVALID_CURSOR" }, "Subscribe with another subject's cursor");
        checkEqual(sub.received.length, 0, "messages sent before INVALID_CURSOR");
      } finally {
        sub.close();
      }
    },
  }),
  defineCase({
    id: "subscription.other-epoch-cursor-resets",
    requirements: ["SUB-005", "SUB-007", "SUB-008"],
    profile: "core",
    needs: ["restart"],
    exclusive: true,
    timeoutMs: 60_000,
    async run(ctx) {
      let session = await ctx.session();
      const stream = await createStream(ctx, session);
      const sub = openSubscription(session, "", ctx.signal);
      let oldCursor: string;
      try {
        await sub.expectEvent("ready");
        await append(session, stream.name, [{ a: 1 }], { clientSequence: 1 });
        oldCursor = (await sub.expectEvent("deltasAppended")).cursor;
      } finally {
        sub.close();
      }
      // A wiped store is a new epoch: the old cursor must get one typed reset, never silence.
      await ctx.restartServer({ wipeData: true, kill: false });
      session = await ctx.session();
      const reset = openSubscription(session, oldCursor, ctx.signal);
      let resetCursor: string;
      try {
        const first = await reset.nextEvent();
        if (first.event?.$case !== "reset") fail(`a cursor of another epoch must be answered with reset, got ${first.event?.$case ?? "nothing"}`);
        checkEqual(first.event.value.reason, v1.ResetReason.RESET_REASON_EPOCH_CHANGED, "reset reason");
        const { epoch } = await session.clients.serverInfo.getServerInfo({});
        checkEqual(first.event.value.epoch, epoch, "reset.epoch equals the new ServerInfo.epoch");
        resetCursor = first.cursor;
        const fresh = await createStream(ctx, session);
        const created = await reset.expectEvent("streamCreated");
        checkEqual(created.event.value.stream?.uid, fresh.uid, "events after a reset follow it");
      } finally {
        reset.close();
      }
      const again = openSubscription(session, resetCursor, ctx.signal);
      try {
        await again.expectEvent("ready", { skipOthers: false });
      } finally {
        again.close();
      }
    },
  }),
  defineCase({
    id: "subscription.heartbeat-carries-cursor",
    requirements: ["SUB-020", "SUB-022", "SUB-021"],
    profile: "core",
    timeoutMs: 20_000,
    async run(ctx) {
      const session = await ctx.session();
      const sub = openSubscription(session, "", ctx.signal, 1);
      try {
        await sub.expectEvent("ready");
        const beat = await sub.next(3_500);
        if (beat.event?.$case !== "heartbeat") fail(`expected a heartbeat within heartbeat_seconds, got ${beat.event?.$case}`);
        check(beat.event.value.serverTime !== undefined, "Heartbeat.server_time must be set");
        check(beat.cursor !== "", "a heartbeat must carry a cursor");
      } finally {
        sub.close();
      }
      const bad = openSubscription(session, "", ctx.signal, 301);
      try {
        checkError(await bad.ended(), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["heartbeat_seconds"] }, "heartbeat_seconds 301");
      } finally {
        bad.close();
      }
    },
  }),
  defineCase({
    id: "subscription.needs-device-bound-token",
    requirements: ["SUB-050"],
    profile: "core",
    async run(ctx) {
      const owner = await ctx.session();
      const unbound = await ctx.session({ accountId: owner.accountId, deviceId: null });
      const sub = openSubscription(unbound, "", ctx.signal);
      try {
        checkError(await sub.ended(), { code: Status.FAILED_PRECONDITION, reason: "DEVICE_REQUIRED" }, "Subscribe with an unbound token");
      } finally {
        sub.close();
      }
    },
  }),
  defineCase({
    id: "subscription.partly-compacted-batch-resets",
    requirements: ["SUB-006", "SUB-007", "SUB-010", "COMPACT-001"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const cursor = await cursorNow(session, ctx.signal);
      const stream = await createStream(ctx, session);
      await append(session, stream.name, [{ a: 1 }, { b: 2 }, { c: 3 }], { clientSequence: 1 });
      // The horizon falls inside the batch: its third delta survives, its first two do not,
      // so the batch can no longer be delivered as one whole event.
      await session.clients.streams.compactStream({ stream: stream.name, horizonVersion: 2n });
      await expectCursorExpired(session, cursor, ctx.signal, "a cursor before a batch the horizon cut into");
    },
  }),
  defineCase({
    id: "subscription.compacted-batch-deep-in-backlog-resets",
    requirements: ["SUB-006", "SUB-007"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const busy = await Promise.all(Array.from({ length: 6 }, () => createStream(ctx, session)));
      const late = await createStream(ctx, session);
      const cursor = await cursorNow(session, ctx.signal);
      // A long backlog of intact batches, so that the compacted one lies far past whatever a
      // server reads from its log in one go before it answers ready.
      await Promise.all(busy.map(async (stream) => {
        for (let seq = 1; seq <= 100; seq++) await append(session, stream.name, [{ seq }], { clientSequence: seq });
      }));
      await append(session, late.name, [{ x: 1 }], { clientSequence: 1 });
      await session.clients.streams.compactStream({ stream: late.name, horizonVersion: 1n });
      await expectCursorExpired(session, cursor, ctx.signal, "a cursor 600 events before a compacted batch");
    },
  }),
  defineCase({
    id: "subscription.prompt-reader-survives-long-catch-up",
    requirements: ["SUB-033", "SUB-003"],
    profile: "core",
    timeoutMs: 90_000,
    async run(ctx) {
      // A backlog and a stream of new commits during the replay, each larger than what a
      // server typically buffers per subscriber (the reference server: 1000 events). The
      // backlog's events are large, so that transport flow control keeps the server replaying
      // while the reader works through them. A reader that keeps reading must get every event
      // once, in order, and must not be cut. Backlog and live commits are spread over several
      // streams, written side by side: the same events in fewer round trips.
      const BACKLOG_PER_STREAM = 110;
      const LIVE_PER_STREAM = 110;
      const session = await ctx.session();
      const backlog = await Promise.all(Array.from({ length: 10 }, () => createStream(ctx, session)));
      const live = await Promise.all(Array.from({ length: 10 }, () => createStream(ctx, session)));
      const cursor = await cursorNow(session, ctx.signal);
      await Promise.all(backlog.map(async (stream) => {
        for (let seq = 1; seq <= BACKLOG_PER_STREAM; seq++) await append(session, stream.name, [{ seq, pad: "x".repeat(16_000) }], { clientSequence: seq });
      }));
      const total = backlog.length * BACKLOG_PER_STREAM + live.length * LIVE_PER_STREAM;
      const last = new Map<string, bigint>();
      let seen = 0;
      let appended = 0;
      // Read the call directly, one message at a time: the next message is pulled only after
      // this one was handled, so flow control paces the server as a real, busy client would.
      const reading = new AbortController();
      const stop = (): void => reading.abort();
      ctx.signal.addEventListener("abort", stop);
      try {
        const call = session.clients.subscriptions.subscribe({ parent: session.subject, cursor, heartbeatSeconds: 0 }, { signal: reading.signal });
        try {
          for await (const message of call) {
            if (message.event?.$case !== "deltasAppended") continue;
            for (const delta of message.event.value.deltas) {
              const expected = (last.get(delta.stream) ?? 0n) + 1n;
              checkEqual(delta.version, expected, `version of the next event of ${delta.stream} (no gap, no duplicate)`);
              last.set(delta.stream, delta.version);
              seen += 1;
            }
            // One commit on each live stream per message read, while the backlog replays.
            if (appended < LIVE_PER_STREAM) {
              appended += 1;
              await Promise.all(live.map((stream) => append(session, stream.name, [{ n: appended }], { clientSequence: appended })));
            }
            // Caught up: the same call must now carry a new commit live, not end.
            if (seen === total) await append(session, live[0]!.name, [{ n: LIVE_PER_STREAM + 1 }], { clientSequence: LIVE_PER_STREAM + 1 });
            if (seen > total) break;
          }
        } catch (error) {
          // The case's own time limit (scaled by --timeout-scale) is the only patience: a slow
          // server under load is reported as slow, not as one that cut its reader.
          if (ctx.signal.aborted) fail(`the subscription delivered ${seen} of ${total + 1} events within the case's time limit`);
          fail(`the subscription ended after ${seen} of ${total + 1} events while the reader kept reading: ${(error as Error).message}`);
        }
        for (const stream of backlog) checkEqual(last.get(stream.name), BigInt(BACKLOG_PER_STREAM), `events of ${stream.name}`);
        for (const [i, stream] of live.entries()) checkEqual(last.get(stream.name), BigInt(LIVE_PER_STREAM + (i === 0 ? 1 : 0)), i === 0 ? "events committed during the replay, then one live" : `events of ${stream.name}, committed during the replay`);
      } finally {
        ctx.signal.removeEventListener("abort", stop);
        reading.abort();
      }
    },
  }),
  defineCase({
    id: "subscription.expired-cursor-resets",
    requirements: ["SUB-006"],
    profile: "core",
    async run(ctx) {
      ctx.skip("a client cannot make a server discard retained events; SUB-006 needs a server-side retention hook to test");
    },
  }),
  defineCase({
    id: "subscription.stalled-reader-is-cut",
    requirements: ["SUB-034", "SUB-031"],
    profile: "core",
    timeoutMs: 45_000,
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      // A plain grpc-js call, so that the client can stop reading (pause) as a stuck app does.
      const { client, call } = rawSubscribe(ctx.address(), ctx.credentials(), session, 0);
      try {
        let events = 0;
        const ended = new Promise<grpc.ServiceError | undefined>((resolve) => {
          call.on("error", resolve);
          call.on("end", () => resolve(undefined));
        });
        await new Promise<void>((resolve) => {
          call.on("data", (message: continuity.v1.SubscribeResponse) => {
            if (message.event?.$case === "deltasAppended") events += 1;
            if (message.event?.$case === "ready") {
              call.pause();
              resolve();
            }
          });
        });
        // Far fewer events and bytes than a server buffers per subscriber, far more than HTTP/2
        // flow control lets through to a client that does not read.
        const count = 40;
        const payload = Buffer.alloc(64 * 1024, 1);
        for (let seq = 1; seq <= count; seq++) await append(session, stream.name, [payload], { clientSequence: seq });
        // SUB-034: 15 seconds with a written message not taken, and the call must be ended.
        await new Promise((resolve) => setTimeout(resolve, 17_000));
        call.resume();
        const outcome = await Promise.race([ended, new Promise<"open">((resolve) => setTimeout(() => resolve("open"), 8_000))]);
        if (outcome === "open") fail(`the call is still open after the client stopped reading for 17 s (${events} of ${count} events delivered since it resumed)`);
        if (outcome === undefined) fail("the subscription ended with OK after the client stopped reading");
        checkError(richErrorOf(SUBSCRIBE_PATH, outcome), { code: Status.RESOURCE_EXHAUSTED, reason: "SUBSCRIBER_TOO_SLOW" }, "the end of a subscription whose client stopped reading");
        check(events < count, `a cut subscription delivered all ${count} events`);
      } finally {
        call.cancel();
        client.close();
      }
    },
  }),
  defineCase({
    id: "subscription.reading-reader-is-kept",
    requirements: ["SUB-034"],
    profile: "core",
    timeoutMs: 90_000,
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      // A plain grpc-js call, so that the client can take one message at a time, as a slow app
      // does. Heartbeats every 60 s: none comes while the feed is quiet below.
      const { client, call } = rawSubscribe(ctx.address(), ctx.credentials(), session, 60);
      try {
        const versions: bigint[] = [];
        let oneAtATime = false;
        let endedWith: grpc.ServiceError | "OK" | undefined;
        call.on("error", (error: grpc.ServiceError) => (endedWith ??= error));
        call.on("end", () => (endedWith ??= "OK"));
        const open = (what: string): void => {
          if (endedWith === undefined) return;
          const ending = endedWith === "OK" ? "OK" : `${Status[endedWith.code]} ${endedWith.details}`;
          fail(`${what}: the call ended (${ending}) with ${versions.length} events delivered, though the client took every message written within seconds`);
        };
        const delivered = async (count: number, withinMs: number, what: string): Promise<void> => {
          for (const deadline = Date.now() + withinMs; versions.length < count; ) {
            open(what);
            if (Date.now() > deadline) fail(`${what}: ${versions.length} of ${count} events delivered within ${withinMs} ms`);
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        };
        await new Promise<void>((resolve) => {
          call.on("data", (message: continuity.v1.SubscribeResponse) => {
            if (message.event?.$case === "ready") resolve();
            if (message.event?.$case === "deltasAppended") versions.push(...message.event.value.deltas.map((d) => d.version));
            if (oneAtATime) call.pause();
          });
        });
        // SUB-034 judges a written message the client has not taken. Here the client has taken
        // every one and the feed is quiet for longer than the period: nothing may end the call.
        await new Promise((resolve) => setTimeout(resolve, 17_000));
        open("17 s without an event, every message taken");
        await append(session, stream.name, [Buffer.from("after a quiet while")], { clientSequence: 1 });
        await delivered(1, 10_000, "a commit after a quiet feed");
        // A client that takes a message every 1.5 s while the server has more waiting for it:
        // more written than HTTP/2 flow control lets through at once, far fewer events and
        // bytes than a server buffers per subscriber.
        oneAtATime = true;
        call.pause();
        const count = 40;
        const payload = Buffer.alloc(64 * 1024, 1);
        for (let seq = 2; seq <= count + 1; seq++) await append(session, stream.name, [payload], { clientSequence: seq });
        for (const until = Date.now() + 17_000; Date.now() < until; ) {
          await new Promise((resolve) => setTimeout(resolve, 1_500));
          open("a reader taking a message every 1.5 s");
          call.resume();
        }
        // Then nothing taken for 3.5 s, more still waiting: below the 5 s every message may
        // wait. (The wait of the message after the last one taken starts when that one was
        // taken; 3.5 s leaves this client's own timers a margin.) The call ended meanwhile is
        // judged once the client reads again, below and at the end.
        const resumedAt = versions.length;
        for (const until = Date.now() + 2_000; versions.length === resumedAt && Date.now() < until; ) await new Promise((resolve) => setTimeout(resolve, 20));
        const before = versions.length;
        await new Promise((resolve) => setTimeout(resolve, 3_500));
        open("a reader that took nothing for 3.5 s");
        if (versions.length !== before) fail(`the client took ${versions.length - before} events while paused`);
        oneAtATime = false;
        call.resume();
        await delivered(count + 1, 15_000, "the rest, read at once");
        checkEqual(versions, Array.from({ length: count + 1 }, (_, i) => BigInt(i + 1)), "versions delivered, in order");
        open("after every event was read");
      } finally {
        call.cancel();
        client.close();
      }
    },
  }),
];
