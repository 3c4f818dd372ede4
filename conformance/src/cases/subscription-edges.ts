import type { continuity } from "@continuity/sdk/gen";
import { v1 } from "../harness/clients.js";
import type { Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, checkError, fail, Status, type ExpectedError } from "../harness/expect.js";
import { linkAccount } from "../harness/linking.js";
import { append, createStream, ENCODING } from "../harness/streams.js";
import { cursorNow, openSubscription, type SubscriptionReader } from "../harness/subscription.js";

// The live feed where an implementation's shortcuts show: a replay past streams deleted (and
// their ids created again), compaction overtaking a replay under way, revocations of others,
// a grant revoked before any of its streams existed, and how often heartbeats come.

type SubscribeResponse = continuity.v1.SubscribeResponse;

/** Opens a subscription as `session` at the end of the feed and waits for its `ready`. */
async function openReady(session: Session, signal: AbortSignal): Promise<SubscriptionReader> {
  const sub = openSubscription(session, "", signal);
  try {
    await sub.expectEvent("ready", { skipOthers: false });
  } catch (error) {
    sub.close();
    throw error;
  }
  return sub;
}

/** SUB-010: a DeltasAppended event holds its whole batch, consecutive versions from the first. */
function checkWholeBatch(message: SubscribeResponse, what: string): void {
  if (message.event?.$case !== "deltasAppended") return;
  const deltas = message.event.value.deltas;
  check(deltas.length > 0, `${what}: a DeltasAppended event with no deltas`);
  const first = deltas[0]!;
  checkEqual(deltas.length, first.batchSize, `${what}: deltas in the DeltasAppended event of the batch at ${first.stream} version ${first.batchFirstVersion} (batch_size)`);
  checkEqual(deltas.map((d) => d.version), deltas.map((_, i) => first.batchFirstVersion + BigInt(i)), `${what}: versions of the batch at ${first.stream} version ${first.batchFirstVersion}`);
  for (const delta of deltas) check(delta.payload.length > 0, `${what}: payload of ${delta.stream} version ${delta.version} delivered`);
}

async function grantTo(owner: Session, grantee: Session, streamType: string): Promise<continuity.v1.Grant> {
  const { grant } = await owner.clients.consent.createGrant({
    parent: owner.subject,
    grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${grantee.platform.id}`, streamType, access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined },
  });
  check(grant !== undefined, "CreateGrant must return the grant");
  return grant;
}

/** The next event of `sub` must be the StreamCreated of `stream`: nothing leaked or ended before it. */
async function expectCreatedNext(sub: SubscriptionReader, stream: continuity.v1.Stream, what: string): Promise<void> {
  let next: SubscribeResponse;
  try {
    next = await sub.nextEvent(10_000);
  } catch (error) {
    fail(`${what}: expected the StreamCreated of ${stream.name} next, but the feed failed: ${(error as Error).message}`);
  }
  if (next.event?.$case !== "streamCreated" || next.event.value.stream?.uid !== stream.uid) {
    const about = next.event?.$case === "deltasAppended" ? next.event.value.deltas[0]?.stream : next.event?.$case === "streamCreated" ? next.event.value.stream?.name : "";
    fail(`${what}: expected the StreamCreated of ${stream.name} next, got ${next.event?.$case ?? "nothing"} ${about ?? ""}`);
  }
}

export const SUBSCRIPTION_EDGE_CASES = [
  defineCase({
    id: "subscription.replay-past-deleted-and-recreated-stream",
    requirements: ["SUB-016", "SUB-003", "SUB-008", "SUB-010", "SUB-011", "SUB-013", "GEN-042"],
    profile: "core",
    async run(ctx) {
      // From the very start of a fresh subject's feed: a stream appended to and deleted, its id
      // created again (a new uid) and appended to, and a stream that is simply deleted. The
      // deleted incarnations' deltas are gone; a replay must neither fail on them, nor take
      // the new stream's history for the old one's, nor send part of a batch.
      const session = await ctx.session();
      const start = await cursorNow(session, ctx.signal);
      const reusedId = ctx.uniqueId("reused");
      const old = await createStream(ctx, session, { streamId: reusedId });
      await append(session, old.name, [{ a: 1 }, { b: 2 }], { clientSequence: 1 });
      await append(session, old.name, [{ c: 3 }], { clientSequence: 2 });
      const gone = await createStream(ctx, session);
      await append(session, gone.name, [{ x: 1 }], { clientSequence: 1 });
      await session.clients.streams.deleteStream({ name: old.name });
      await session.clients.streams.deleteStream({ name: gone.name });
      const reborn = await createStream(ctx, session, { streamId: reusedId });
      check(reborn.uid !== old.uid, "a stream created again under a deleted stream's id must get a new uid (GEN-042)");
      await append(session, reborn.name, [{ d: 4 }, { e: 5 }], { clientSequence: 1 });
      await append(session, reborn.name, [{ f: 6 }], { clientSequence: 2 });
      const sentinel = await createStream(ctx, session);

      const sub = openSubscription(session, start, ctx.signal);
      try {
        const first = await sub.nextEvent(10_000);
        if (first.event?.$case !== "ready") fail(`a cursor at the start of the feed, replayed past deleted streams, must be answered with ready, got ${first.event?.$case ?? "nothing"}`);
        checkEqual(first.cursor, start, "ready.cursor of the resumed subscription");
        const { epoch } = await session.clients.serverInfo.getServerInfo({});
        checkEqual(first.event.value.epoch, epoch, "ready.epoch of a resumed subscription equals ServerInfo.epoch (SUB-008)");
        const seen: string[] = [];
        const rebornVersions: bigint[] = [];
        let rebornCreated = false;
        for (;;) {
          let message: SubscribeResponse;
          try {
            message = await sub.nextEvent(10_000);
          } catch (error) {
            fail(`the replay past deleted streams failed after ${seen.join(", ") || "ready"}: ${(error as Error).message}`);
          }
          checkWholeBatch(message, "a replay past deleted streams");
          const event = message.event;
          if (event?.$case === "streamCreated") {
            if (event.value.stream?.uid === sentinel.uid) break;
            if (event.value.stream?.uid === reborn.uid) rebornCreated = true;
            seen.push(`created ${event.value.stream?.uid}`);
          } else if (event?.$case === "streamDeleted") {
            seen.push(`deleted ${event.value.streamUid}`);
          } else if (event?.$case === "deltasAppended") {
            const stream = event.value.deltas[0]!.stream;
            seen.push(`deltas ${stream}@${event.value.deltas[0]!.batchFirstVersion}`);
            // The old incarnation's batches, if a server still has them, come before its StreamDeleted.
            if (stream === reborn.name && rebornCreated) rebornVersions.push(...event.value.deltas.map((d) => d.version));
          } else {
            seen.push(event?.$case ?? "an empty message");
          }
        }
        for (const uid of [old.uid, gone.uid, reborn.uid]) check(seen.includes(`created ${uid}`), `StreamCreated of stream uid ${uid} replayed (got ${seen.join(", ")})`);
        for (const uid of [old.uid, gone.uid]) check(seen.includes(`deleted ${uid}`), `StreamDeleted of stream uid ${uid} replayed (got ${seen.join(", ")})`);
        check(seen.indexOf(`deleted ${old.uid}`) < seen.indexOf(`created ${reborn.uid}`), `the old stream's StreamDeleted before the new one's StreamCreated (got ${seen.join(", ")})`);
        checkEqual(rebornVersions, [1n, 2n, 3n], "versions of the stream created again, replayed after its StreamCreated");
      } finally {
        sub.close();
      }
    },
  }),
  defineCase({
    id: "subscription.compaction-overtaking-a-replay",
    requirements: ["SUB-035", "SUB-032", "SUB-006", "SUB-007", "SUB-010", "SUB-011"],
    profile: "core",
    timeoutMs: 90_000,
    async run(ctx) {
      // A replay the client paces (it pulls one message at a time, so HTTP/2 flow control holds
      // the server far inside a long backlog of large events), and a stream whose batches lie
      // at the end of that backlog compacted to its head while the replay is under way. The
      // server can no longer deliver those batches: it may end the call with
      // HISTORY_COMPACTED (then the last cursor answers reset), or deliver them whole, but it
      // must not skip them and carry on.
      const session = await ctx.session();
      const large = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const late = await createStream(ctx, session);
      const cursor = await cursorNow(session, ctx.signal);
      const LARGE_EVENTS = 320;
      const LATE_BATCHES = 6;
      const payload = Buffer.alloc(Math.min(32 * 1024, ctx.limits.maxDeltaBytes), 0x61);
      for (let seq = 1; seq <= LARGE_EVENTS; seq++) await append(session, large.name, [payload], { clientSequence: seq });
      for (let seq = 1; seq <= LATE_BATCHES; seq++) await append(session, late.name, [{ seq }], { clientSequence: seq });

      const reading = new AbortController();
      const stop = (): void => reading.abort();
      ctx.signal.addEventListener("abort", stop);
      let lastCursor = "";
      let largeSeen = 0n;
      const lateVersions: bigint[] = [];
      let compactedSeen = false;
      let endedWith: unknown;
      try {
        const call = session.clients.subscriptions.subscribe({ parent: session.subject, cursor, heartbeatSeconds: 0 }, { signal: reading.signal })[Symbol.asyncIterator]();
        const pull = async (): Promise<SubscribeResponse | undefined> => {
          const next = await call.next();
          return next.done === true ? undefined : next.value;
        };
        const ready = await pull();
        if (ready?.event?.$case !== "ready") fail(`the first message of the replay must be ready, got ${ready?.event?.$case ?? "nothing"}`);
        lastCursor = ready.cursor;
        const firstBatch = await pull();
        if (firstBatch?.event?.$case !== "deltasAppended") fail(`the replay's first event must be the first batch, got ${firstBatch?.event?.$case ?? "nothing"}`);
        largeSeen = firstBatch.event.value.deltas.at(-1)!.version;
        lastCursor = firstBatch.cursor;
        // The client holds the rest of ~10 MiB back while the late stream is compacted to its head.
        const { stream: compacted } = await session.clients.streams.compactStream({ stream: late.name, horizonVersion: BigInt(LATE_BATCHES) });
        checkEqual(compacted?.horizonVersion, BigInt(LATE_BATCHES), "horizon of the late stream, compacted to its head");
        try {
          for (;;) {
            const message = await pull();
            if (message === undefined) fail("the replay ended with OK");
            checkWholeBatch(message, "a replay overtaken by compaction");
            lastCursor = message.cursor;
            const event = message.event;
            if (event?.$case === "deltasAppended") {
              const stream = event.value.deltas[0]!.stream;
              if (stream === large.name) {
                checkEqual(event.value.deltas[0]!.version, largeSeen + 1n, `the next version of ${large.name} (no gap, no duplicate)`);
                largeSeen = event.value.deltas.at(-1)!.version;
              } else if (stream === late.name) {
                lateVersions.push(...event.value.deltas.map((d) => d.version));
              }
            } else if (event?.$case === "streamCompacted" && event.value.stream?.uid === late.uid) {
              compactedSeen = true;
              break;
            }
          }
        } catch (error) {
          endedWith = error;
        }
      } finally {
        ctx.signal.removeEventListener("abort", stop);
        reading.abort();
      }
      checkEqual(lateVersions, Array.from({ length: lateVersions.length }, (_, i) => BigInt(i + 1)), `versions of ${late.name} delivered (from 1, no gap)`);
      if (compactedSeen) {
        // Delivered to the end: then nothing may be missing.
        checkEqual(largeSeen, BigInt(LARGE_EVENTS), `versions of ${large.name} delivered before the late stream's StreamCompacted`);
        checkEqual(lateVersions.length, LATE_BATCHES, `batches of ${late.name} delivered before its StreamCompacted: a feed that goes on past compacted batches must have delivered them whole`);
        ctx.note("the server delivered every batch whole although compaction overtook the replay");
        return;
      }
      const { message } = checkError(endedWith, { code: Status.FAILED_PRECONDITION, reason: "HISTORY_COMPACTED" }, "a replay whose batches were compacted away under it");
      // ERR-007 is a SHOULD: noted, so that this MUST case does not fail on it.
      if (!/[A-Za-z]{2,}\W+[A-Za-z]{2,}/.test(message)) ctx.note(`HISTORY_COMPACTED's status message says nothing: ${JSON.stringify(message)}`);
      check(lateVersions.length < LATE_BATCHES, "HISTORY_COMPACTED after every batch was delivered");
      // The last cursor received now lies before deltas below the horizon: reset, then ready.
      const resumed = openSubscription(session, lastCursor, ctx.signal);
      let resetCursor: string;
      try {
        const first = await resumed.nextEvent(10_000);
        if (first.event?.$case !== "reset") fail(`resubscribing after HISTORY_COMPACTED must be answered with reset, got ${first.event?.$case ?? "nothing"}`);
        checkEqual(first.event.value.reason, v1.ResetReason.RESET_REASON_CURSOR_EXPIRED, "reset reason after HISTORY_COMPACTED");
        resetCursor = first.cursor;
      } finally {
        resumed.close();
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
    id: "subscription.revocations-of-others-leave-the-feed-open",
    requirements: ["SUB-046", "SUB-047", "SUB-040", "SUB-042", "SUB-014"],
    profile: "identity",
    async run(ctx) {
      // One person: a phone and a laptop on platform a, platform b holding a grant of a's,
      // platform c holding one of another type. Revoking b's grant ends b's feed only; revoking the laptop
      // ends the laptop's feed only. Each feed left open must go on with its next event.
      const a = await ctx.session();
      const laptop = await ctx.session({ accountId: a.accountId });
      const b = await linkAccount(ctx, a, ctx.platforms.b, "b");
      const c = await linkAccount(ctx, a, ctx.platforms.c, "c");
      const shared = await createStream(ctx, a, { type: "org.example.shared" });
      const granted = await grantTo(a, b, "org.example.shared");
      await grantTo(a, c, "org.example.for-c");
      const feeds = { phone: await openReady(a, ctx.signal), laptop: await openReady(laptop, ctx.signal), b: await openReady(b, ctx.signal), c: await openReady(c, ctx.signal) };
      try {
        await a.clients.consent.revokeGrant({ name: granted.name });
        const lost = await feeds.b.expectEvent("accessRevoked", { timeoutMs: 10_000 });
        checkEqual([lost.event.value.grant, [...lost.event.value.streams]], [granted.name, [shared.name]], "AccessRevoked on the grantee's feed");
        checkError(await feeds.b.ended(10_000), { code: Status.PERMISSION_DENIED, reason: "GRANT_REVOKED" }, "the grantee's subscription");
        // c could never read a's shared stream: the revocation of b's grant is nothing to c.
        const seen = await createStream(ctx, a, { type: "org.example.for-c" });
        await expectCreatedNext(feeds.c, seen, "the feed of a platform whose grant was not revoked");
        await expectCreatedNext(feeds.phone, seen, "the owner's feed after it revoked another platform's grant");
        await expectCreatedNext(feeds.laptop, seen, "the owner's second device's feed after the grant was revoked");
        await a.clients.devices.revokeDevice({ name: laptop.device });
        checkError(await feeds.laptop.ended(10_000), { code: Status.PERMISSION_DENIED, reason: "DEVICE_REVOKED" }, "the revoked device's subscription");
        for (const message of feeds.laptop.received) check(message.cursor !== "" && message.event !== undefined, `every message of the revoked device's feed carries a cursor and an event (SUB-009), got cursor ${JSON.stringify(message.cursor)} and ${message.event?.$case ?? "no event"}`);
        // SUB-047: an AccessRevoked sent first names every stream the device could read.
        const notice = feeds.laptop.pending().find((m) => m.event?.$case === "accessRevoked");
        if (notice?.event?.$case === "accessRevoked") {
          checkEqual([notice.event.value.grant, [...notice.event.value.streams].sort()], ["", [shared.name, seen.name].sort()], "the AccessRevoked event of the revoked device's subscription");
        }
        const after = await createStream(ctx, a, { type: "org.example.for-c" });
        await expectCreatedNext(feeds.phone, after, "the feed of a device of the subject after another device was revoked");
        await expectCreatedNext(feeds.c, after, "another platform's feed after a device was revoked");
      } finally {
        for (const feed of Object.values(feeds)) feed.close();
      }
    },
  }),
  defineCase({
    id: "subscription.grant-revoked-before-its-streams-existed",
    requirements: ["SUB-014", "SUB-040", "GRANT-006", "ISO-010"],
    profile: "identity",
    async run(ctx) {
      // b holds a grant of a's type that no stream has yet, and subscribes; the grant is
      // revoked (nothing became unreadable, so the feed goes on); then a creates and writes a
      // stream of that type. A server that judges b's feed by the grants it read earlier lets
      // that stream through.
      const a = await ctx.session();
      const b = await linkAccount(ctx, a, ctx.platforms.b, "b");
      const granted = await grantTo(a, b, "org.example.later");
      const early = await createStream(ctx, a, { type: "org.example.later" });
      const sub = await openReady(b, ctx.signal);
      try {
        await a.clients.consent.revokeGrant({ name: granted.name });
        // The grant made `early` readable: that is lost, and ends this feed; a second feed
        // opened after the revocation is the one judged below.
        const lost = await sub.expectEvent("accessRevoked", { timeoutMs: 10_000 });
        checkEqual([...lost.event.value.streams], [early.name], "AccessRevoked.streams");
      } finally {
        sub.close();
      }
      // Now a grant with no stream of its type at all.
      const empty = await grantTo(a, b, "org.example.empty");
      const feed = await openReady(b, ctx.signal);
      try {
        await a.clients.consent.revokeGrant({ name: empty.name });
        const hidden = await createStream(ctx, a, { type: "org.example.empty" });
        await append(a, hidden.name, [{ secret: 1 }], { clientSequence: 1 });
        const own = await createStream(ctx, b, { type: "org.example.b-own" });
        await expectCreatedNext(feed, own, "the feed after a grant of a type with no stream was revoked (its streams created later must be withheld)");
      } finally {
        feed.close();
      }
    },
  }),
  defineCase({
    id: "subscription.handoff-events-reach-exactly-their-devices",
    requirements: ["HANDOFF-004", "HANDOFF-010", "SUB-014"],
    profile: "core",
    async run(ctx) {
      // Three devices of one person; a handoff offered by the phone to the laptop only, which
      // declines it. The laptop is offered it and told of its end, the phone is told of its
      // end, the tv hears of neither: the next event each feed shows is a sentinel stream.
      const phone = await ctx.session();
      const laptop = await ctx.session({ accountId: phone.accountId });
      const tv = await ctx.session({ accountId: phone.accountId });
      const stream = await createStream(ctx, phone);
      const { checkpoint } = await phone.clients.checkpoints.createCheckpoint({ parent: phone.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: undefined });
      const feeds = { phone: await openReady(phone, ctx.signal), laptop: await openReady(laptop, ctx.signal), tv: await openReady(tv, ctx.signal) };
      try {
        const { handoff } = await phone.clients.checkpoints.offerHandoff({ parent: phone.subject, checkpoint: checkpoint!.name, targetDevice: laptop.device, ttlSeconds: 60 });
        const offered = await feeds.laptop.expectEvent("handoffOffered", { timeoutMs: 10_000 });
        checkEqual(offered.event.value.handoff?.name, handoff!.name, "HandoffOffered on the target device");
        await laptop.clients.checkpoints.declineHandoff({ name: handoff!.name });
        for (const [device, feed] of [["the source device", feeds.phone], ["the target device, which declined", feeds.laptop]] as const) {
          const resolved = await feed.expectEvent("handoffResolved", { timeoutMs: 10_000 });
          checkEqual([resolved.event.value.handoff?.name, resolved.event.value.handoff?.state], [handoff!.name, v1.HandoffState.HANDOFF_STATE_DECLINED], `HandoffResolved on ${device}`);
        }
        const sentinel = await createStream(ctx, phone);
        await expectCreatedNext(feeds.tv, sentinel, "a device neither offering nor offered the handoff");
        await expectCreatedNext(feeds.phone, sentinel, "the source device after the HandoffResolved");
        await expectCreatedNext(feeds.laptop, sentinel, "the target device after the HandoffResolved");
      } finally {
        for (const feed of Object.values(feeds)) feed.close();
      }
    },
  }),
  defineCase({
    id: "subscription.endings-explain-themselves",
    requirements: ["ERR-007"],
    profile: "identity",
    async run(ctx) {
      // ERR-007 for the ways a Subscribe call is refused or ended: each status message is a
      // sentence for the developer reading the log (clients branch on the reason only).
      const bad: string[] = [];
      const explained = (error: unknown, expected: ExpectedError, what: string): void => {
        const { message } = checkError(error, expected, what);
        if (!/[A-Za-z]{2,}\W+[A-Za-z]{2,}/.test(message)) bad.push(`${what}: ${JSON.stringify(message)}`);
      };
      const ending = async (sub: SubscriptionReader, expected: ExpectedError, what: string): Promise<void> => {
        try {
          explained(await sub.ended(10_000), expected, what);
        } finally {
          sub.close();
        }
      };
      const owner = await ctx.session();
      const other = await ctx.session();
      const invalid = { code: Status.INVALID_ARGUMENT, reason: "INVALID_CURSOR" } as const;
      await ending(openSubscription(owner, "not-a-cursor", ctx.signal), invalid, "Subscribe with a garbage cursor");
      await ending(openSubscription(owner, await cursorNow(other, ctx.signal), ctx.signal), invalid, "Subscribe with another subject's cursor");
      const unbound = await ctx.session({ accountId: owner.accountId, deviceId: null });
      await ending(openSubscription(unbound, "", ctx.signal), { code: Status.FAILED_PRECONDITION, reason: "DEVICE_REQUIRED" }, "Subscribe with an unbound token");

      const b = await linkAccount(ctx, owner, ctx.platforms.b, "b");
      await createStream(ctx, owner, { type: "org.example.shared" });
      const granted = await grantTo(owner, b, "org.example.shared");
      const grantee = await openReady(b, ctx.signal);
      await owner.clients.consent.revokeGrant({ name: granted.name });
      await ending(grantee, { code: Status.PERMISSION_DENIED, reason: "GRANT_REVOKED" }, "the end of a subscription whose grant was revoked");

      const laptop = await ctx.session({ accountId: owner.accountId });
      const laptopFeed = await openReady(laptop, ctx.signal);
      await owner.clients.devices.revokeDevice({ name: laptop.device });
      await ending(laptopFeed, { code: Status.PERMISSION_DENIED, reason: "DEVICE_REVOKED" }, "the end of a revoked device's subscription");

      const linkedFeed = await openReady(b, ctx.signal);
      const { accountLinks } = await owner.clients.subjects.listAccountLinks({ parent: owner.subject, pageSize: 0, pageToken: "" });
      const link = accountLinks.find((l) => l.platform === `platforms/${b.platform.id}`);
      if (link === undefined) fail(`no account link of platforms/${b.platform.id} listed`);
      await owner.clients.subjects.deleteAccountLink({ name: link.name });
      await ending(linkedFeed, { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "the end of a subscription whose platform was unlinked");

      const ownerFeed = await openReady(owner, ctx.signal);
      await owner.clients.subjects.deleteSubject({ name: owner.subject });
      await ending(ownerFeed, { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "the end of a subscription whose subject was erased");
      if (bad.length > 0) fail(`status messages that say nothing to a developer:\n${bad.join("\n")}`);
    },
  }),
  defineCase({
    id: "subscription.altered-cursor-invalid",
    requirements: ["SUB-004"],
    profile: "core",
    async run(ctx) {
      // A cursor the server minted, altered the ways a careless client or a proxy alters
      // text: a character added in front, behind or inside, one changed, one dropped, the
      // cursor twice over. None of them was minted: each must fail the call before any
      // message (a server whose decoder skips what it does not expect would read them as
      // the original cursor and answer ready).
      const session = await ctx.session();
      await createStream(ctx, session);
      const cursor = await cursorNow(session, ctx.signal);
      const at = Math.floor(cursor.length * 0.8);
      const other = (c: string): string => (c === "A" ? "B" : "A");
      const altered: [string, string][] = [
        [`%${cursor}`, "with % in front"],
        [`${cursor}%`, "with % behind"],
        [`${cursor.slice(0, at)}.${cursor.slice(at)}`, "with a . inside"],
        [`${cursor.slice(0, at)} ${cursor.slice(at)}`, "with a space inside"],
        [`AAAA${cursor}`, "with AAAA in front"],
        [`${cursor}AAAA`, "with AAAA behind"],
        [`${cursor.slice(0, at)}${other(cursor[at]!)}${cursor.slice(at + 1)}`, "with one character changed"],
        [cursor.slice(0, -1), "without its last character"],
        [`${cursor}${cursor}`, "twice over"],
      ];
      for (const [text, what] of altered) {
        const sub = openSubscription(session, text, ctx.signal);
        try {
          const error = await sub.ended(10_000);
          if (error === undefined) fail(`a cursor ${what} must fail the call, it ended OK`);
          checkError(error, { code: Status.INVALID_ARGUMENT, reason: "INVALID_CURSOR" }, `Subscribe with a cursor ${what}`);
          checkEqual(sub.received.length, 0, `messages sent before INVALID_CURSOR for a cursor ${what}`);
        } catch (error) {
          if (sub.received.length > 0) fail(`a cursor ${what} was answered with ${sub.received[0]!.event?.$case ?? "a message"} instead of INVALID_CURSOR`);
          throw error;
        } finally {
          sub.close();
        }
      }
      // The cursor itself still works.
      const sub = openSubscription(session, cursor, ctx.signal);
      try {
        await sub.expectEvent("ready", { skipOthers: false });
      } finally {
        sub.close();
      }
    },
  }),
  defineCase({
    id: "subscription.heartbeats-keep-their-interval",
    requirements: ["SUB-023", "SUB-020"],
    profile: "core",
    timeoutMs: 30_000,
    async run(ctx) {
      // heartbeat_seconds 0 means 15 s, 2 means 2 s: heartbeats come no more often than that.
      // Only the upper bound on their number is checked, so a slow machine cannot fail it.
      const session = await ctx.session();
      const WINDOW_MS = 5_000;
      const count = async (heartbeatSeconds: number): Promise<number> => {
        const sub = openSubscription(session, "", ctx.signal, heartbeatSeconds);
        try {
          await sub.expectEvent("ready", { skipOthers: false });
          await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
          const messages = sub.pending();
          for (const message of messages) if (message.event?.$case !== "heartbeat") fail(`expected only heartbeats on an idle feed, got ${message.event?.$case ?? "an empty message"}`);
          return messages.length;
        } finally {
          sub.close();
        }
      };
      const [byDefault, everyTwo] = await Promise.all([count(0), count(2)]);
      checkEqual(byDefault, 0, `heartbeats within ${WINDOW_MS} ms with heartbeat_seconds 0 (every 15 s)`);
      check(everyTwo <= 3, `${everyTwo} heartbeats within ${WINDOW_MS} ms with heartbeat_seconds 2 (at most 3)`);
    },
  }),
];
