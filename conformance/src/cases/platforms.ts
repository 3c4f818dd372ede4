import type { continuity } from "@continuity/sdk/gen";
import { v1 } from "../harness/clients.js";
import type { CaseContext, Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, checkError, expectError, fail, Status } from "../harness/expect.js";
import { linkAccount } from "../harness/linking.js";
import { append, createStream, downloadSnapshot, ENCODING } from "../harness/streams.js";
import { openSubscription, type SubscriptionReader } from "../harness/subscription.js";

// Scenarios with more than two parties: three platforms of one subject, grants between them,
// and what each one's calls and live feed show while the others write, grant and revoke.

type GrantAccess = continuity.v1.GrantAccess;

async function grant(owner: Session, grantee: Session, streamType: string, access: GrantAccess): Promise<continuity.v1.Grant> {
  const { grant: created } = await owner.clients.consent.createGrant({
    parent: owner.subject,
    grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${grantee.platform.id}`, streamType, access, createTime: undefined, revokeTime: undefined },
  });
  check(created !== undefined, "CreateGrant must return the grant");
  return created;
}

async function streamNames(session: Session): Promise<string[]> {
  const { streams } = await session.clients.streams.listStreams({ parent: session.subject, pageSize: 0, pageToken: "", type: "" });
  return streams.map((s) => s.name);
}

async function grantNames(session: Session): Promise<string[]> {
  const { grants } = await session.clients.consent.listGrants({ parent: session.subject, pageSize: 0, pageToken: "" });
  return grants.map((g) => g.name);
}

/** Three platforms of one fresh subject: a (full scopes), b (full scopes), c (state.read only). */
async function threePlatforms(ctx: CaseContext): Promise<{ a: Session; b: Session; c: Session }> {
  const a = await ctx.session();
  const b = await linkAccount(ctx, a, ctx.platforms.b, "b");
  const c = await linkAccount(ctx, a, ctx.platforms.c, "c");
  checkEqual([b.subject, c.subject], [a.subject, a.subject], "accounts linked by link codes join the code's subject");
  return { a, b, c };
}

const NOT_FOUND = { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" } as const;

/**
 * A stream created after everything else by `creator`, of a type both feeds may read: a
 * sentinel. Every event a feed could leak was committed before it, so the first event each
 * feed shows after those must be this one.
 */
async function expectSentinel(ctx: CaseContext, creator: Session, feeds: readonly [SubscriptionReader, string][]): Promise<void> {
  const sentinel = await createStream(ctx, creator, { type: "org.example.sentinel" });
  for (const [sub, what] of feeds) {
    const next = await sub.nextEvent();
    if (next.event?.$case !== "streamCreated" || next.event.value.stream?.uid !== sentinel.uid) {
      const about = next.event?.$case === "streamCreated" ? next.event.value.stream?.name : next.event?.$case === "deltasAppended" ? next.event.value.deltas[0]?.stream : next.event?.$case === "handoffOffered" ? next.event.value.handoff?.name : "";
      fail(`${what}: expected the sentinel stream's StreamCreated next, got ${next.event?.$case ?? "nothing"} ${about ?? ""}`);
    }
  }
}

export const PLATFORM_CASES = [
  defineCase({
    id: "grant.three-platforms-grants-do-not-chain",
    requirements: ["GRANT-004", "GRANT-005", "GRANT-007", "ISO-010", "STREAM-011"],
    profile: "identity",
    async run(ctx) {
      const { a, b, c } = await threePlatforms(ctx);
      const ofA = await createStream(ctx, a, { type: "org.example.shared" });
      const privateOfA = await createStream(ctx, a, { type: "org.example.private" });
      const ofB = await createStream(ctx, b, { type: "org.example.shared" });
      const ab = await grant(a, b, "*", v1.GrantAccess.GRANT_ACCESS_READ_WRITE);
      const bc = await grant(b, c, "*", v1.GrantAccess.GRANT_ACCESS_READ);
      // b reaches a's streams through a's grant, and writes them.
      checkEqual(await streamNames(b), [ofA.name, privateOfA.name, ofB.name].sort(), "streams b lists (its own and a's, by a's grant)");
      await append(b, ofA.name, [{ by: "b" }], { clientSequence: 1 });
      // c holds b's grant only: it covers b's streams, never what b itself was granted.
      checkEqual(await streamNames(c), [ofB.name], "streams c lists with a grant from b only (grants do not chain)");
      await expectError(c.clients.streams.getStream({ name: ofA.name }), NOT_FOUND, "GetStream by c of a stream b may read only by a's grant");
      await expectError(downloadSnapshot(c, ofA.name), NOT_FOUND, "GetSnapshot by c of a stream of a");
      await c.clients.streams.getStream({ name: ofB.name });
      // Each platform lists the grants it made or holds, and no other.
      checkEqual(await grantNames(a), [ab.name], "grants a lists (it made a→b, and is no party to b→c)");
      checkEqual(await grantNames(b), [ab.name, bc.name], "grants b lists (it holds a→b and made b→c), oldest first");
      // A platform that is neither grantor nor grantee may not revoke, and nothing changes.
      await expectError(a.clients.consent.revokeGrant({ name: bc.name }), { code: Status.PERMISSION_DENIED, reason: "NOT_GRANTOR" }, "a revoking the grant b made to c");
      checkEqual(await streamNames(c), [ofB.name], "c's streams after a's refused revocation");
      await expectError(b.clients.consent.createGrant({ parent: b.subject, grant: { name: "", grantorPlatform: `platforms/${a.platform.id}`, granteePlatform: `platforms/${c.platform.id}`, streamType: "*", access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } }), { code: Status.PERMISSION_DENIED, reason: "NOT_GRANTOR" }, "b passing on a's streams to c in a's name");
      // A grant from a to c adds a's streams of that type, and only those.
      await grant(a, c, "org.example.shared", v1.GrantAccess.GRANT_ACCESS_READ);
      checkEqual(await streamNames(c), [ofA.name, ofB.name].sort(), "streams c lists with grants from a (one type) and b");
      await expectError(c.clients.streams.getStream({ name: privateOfA.name }), NOT_FOUND, "a stream of a type a's grant to c does not cover");
      const revoked = await b.clients.consent.revokeGrant({ name: bc.name });
      check(revoked.grant?.revokeTime !== undefined, "the grantor's revocation sets revoke_time");
      checkEqual(await streamNames(c), [ofA.name], "c's streams after b revoked its grant");
      checkEqual(await grantNames(b), [ab.name], "b's grants after it revoked b→c");
    },
  }),
  defineCase({
    id: "identity.three-platforms-share-devices-links-and-handoffs",
    requirements: ["DEVICE-003", "DEVICE-007", "LINK-020", "GRANT-002", "GRANT-007", "HANDOFF-005", "HANDOFF-010", "ISO-012"],
    profile: "identity",
    async run(ctx) {
      const { a, b, c } = await threePlatforms(ctx);
      const aLaptop = await ctx.session({ accountId: a.accountId });
      // Devices and account links belong to the person: every platform sees all of them.
      const expectedDevices = [a.device, b.device, c.device, aLaptop.device];
      checkEqual((await b.clients.devices.listDevices({ parent: b.subject, pageSize: 0, pageToken: "" })).devices.map((d) => d.name), expectedDevices, "devices b lists: every platform's, oldest first");
      checkEqual((await b.clients.subjects.listAccountLinks({ parent: b.subject, pageSize: 0, pageToken: "" })).accountLinks.map((l) => l.platform), [a, b, c].map((s) => `platforms/${s.platform.id}`), "account links b lists: every platform's");
      // Grant validation: the stream type is * or a valid type.
      for (const streamType of ["", "nodot", "org.example.bad type"]) {
        await expectError(b.clients.consent.createGrant({ parent: b.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${a.platform.id}`, streamType, access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD" }, `a grant of stream_type ${JSON.stringify(streamType)}`);
      }
      // A handoff of a's stream, offered by a: b (granted) may resolve it, c (not granted) may not.
      const stream = await createStream(ctx, a, { type: "org.example.lesson" });
      const ab = await grant(a, b, "org.example.lesson", v1.GrantAccess.GRANT_ACCESS_READ);
      const { checkpoint } = await a.clients.checkpoints.createCheckpoint({ parent: a.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: undefined });
      const source = openSubscription(a, "", ctx.signal);
      try {
        await source.expectEvent("ready");
        const { handoff } = await a.clients.checkpoints.offerHandoff({ parent: a.subject, checkpoint: checkpoint!.name, targetDevice: "", ttlSeconds: 60 });
        const hidden = { code: Status.NOT_FOUND, reason: "HANDOFF_NOT_FOUND" } as const;
        await expectError(c.clients.checkpoints.getHandoff({ name: handoff!.name }), hidden, "GetHandoff by a platform that may not read the checkpoint");
        await expectError(c.clients.checkpoints.acceptHandoff({ name: handoff!.name }), hidden, "AcceptHandoff by a platform that may not read the checkpoint");
        await expectError(c.clients.checkpoints.declineHandoff({ name: handoff!.name }), hidden, "DeclineHandoff by a platform that may not read the checkpoint");
        const accepted = await b.clients.checkpoints.acceptHandoff({ name: handoff!.name });
        checkEqual([accepted.handoff?.state, accepted.handoff?.resolvedBy], [v1.HandoffState.HANDOFF_STATE_ACCEPTED, b.device], "a handoff accepted by the granted platform's device");
        const resolved = await source.expectEvent("handoffResolved");
        checkEqual(resolved.event.value.handoff?.resolvedBy, b.device, "HandoffResolved on the source device names the other platform's device");
      } finally {
        source.close();
      }
      // Revoking twice: the second call changes nothing, revoke_time included.
      const first = await b.clients.consent.revokeGrant({ name: ab.name });
      await new Promise((resolve) => setTimeout(resolve, 20));
      const second = await a.clients.consent.revokeGrant({ name: ab.name });
      checkEqual(second.grant?.revokeTime?.getTime(), first.grant?.revokeTime?.getTime(), "revoking a revoked grant keeps its revoke_time");
      // Any platform of the subject may revoke any of its devices.
      const revoked = await b.clients.devices.revokeDevice({ name: aLaptop.device });
      checkEqual(revoked.device?.state, v1.DeviceState.DEVICE_STATE_REVOKED, "b revoking a device of a");
      await expectError(aLaptop.clients.subjects.getSubject({ name: a.subject }), { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "a's laptop after b revoked it");
    },
  }),
  defineCase({
    id: "grant.revoking-one-of-two-grants-keeps-the-other",
    requirements: ["GRANT-006", "SUB-040", "SUB-041", "ISO-011", "ISO-013"],
    profile: "identity",
    async run(ctx) {
      const a = await ctx.session();
      const b = await linkAccount(ctx, a, ctx.platforms.b, "b");
      const cartOne = await createStream(ctx, a, { type: "org.example.cart" });
      const cartTwo = await createStream(ctx, a, { type: "org.example.cart" });
      const note = await createStream(ctx, a, { type: "org.example.note" });
      const own = await createStream(ctx, b, { type: "org.example.cart" });
      const readAll = await grant(a, b, "*", v1.GrantAccess.GRANT_ACCESS_READ);
      const writeCarts = await grant(a, b, "org.example.cart", v1.GrantAccess.GRANT_ACCESS_READ_WRITE);
      await append(b, cartOne.name, [{ item: "tea" }], { clientSequence: 1 });
      const sub = openSubscription(b, "", ctx.signal);
      try {
        await sub.expectEvent("ready");
        await a.clients.consent.revokeGrant({ name: writeCarts.name });
        await expectError(append(b, cartOne.name, [{ item: "milk" }], { clientSequence: 2 }), { code: Status.PERMISSION_DENIED, reason: "GRANT_READ_ONLY" }, "an append after the write grant was revoked while a read grant remains");
        checkEqual((await b.clients.streams.getStream({ name: cartOne.name })).stream?.headVersion, 1n, "the stream stays readable through the remaining grant");
        // Nothing became unreadable: no AccessRevoked, and the feed goes on.
        await append(a, cartTwo.name, [{ item: "bread" }], { clientSequence: 1 });
        const still = await sub.expectEvent("deltasAppended");
        checkEqual(still.event.value.deltas.map((d) => d.stream), [cartTwo.name], "the feed after revoking a grant whose streams stay readable");
        await a.clients.consent.revokeGrant({ name: readAll.name });
        const lost = await sub.expectEvent("accessRevoked");
        checkEqual(lost.event.value.grant, readAll.name, "AccessRevoked.grant");
        checkEqual([...lost.event.value.streams].sort(), [cartOne.name, cartTwo.name, note.name].sort(), "AccessRevoked.streams: every stream of the grantor the platform can no longer read, not its own");
        checkError(await sub.ended(), { code: Status.PERMISSION_DENIED, reason: "GRANT_REVOKED" }, "the subscription after its last grant was revoked");
        const resumed = openSubscription(b, lost.cursor, ctx.signal);
        try {
          await resumed.expectEvent("ready");
          await append(a, cartOne.name, [{ item: "jam" }], { clientSequence: 1 });
          await append(a, note.name, [{ text: "x" }], { clientSequence: 1 });
          await append(b, own.name, [{ mine: true }], { clientSequence: 1 });
          const next = await resumed.expectEvent("deltasAppended");
          checkEqual(next.event.value.deltas.map((d) => d.stream), [own.name], "after AccessRevoked the feed carries only what is still readable");
        } finally {
          resumed.close();
        }
      } finally {
        sub.close();
      }
    },
  }),
  defineCase({
    id: "subscription.grantee-feed-follows-the-owner",
    requirements: ["SUB-014", "HANDOFF-004", "GRANT-003", "ISO-010", "SUB-013", "LINK-025"],
    profile: "identity",
    async run(ctx) {
      const { a, b, c } = await threePlatforms(ctx);
      await grant(a, b, "org.example.shared", v1.GrantAccess.GRANT_ACCESS_READ);
      // c may only read; it learns of the sentinel through a grant of b's.
      await grant(b, c, "org.example.sentinel", v1.GrantAccess.GRANT_ACCESS_READ);
      const feeds = [openSubscription(b, "", ctx.signal), openSubscription(c, "", ctx.signal)] as const;
      try {
        for (const feed of feeds) await feed.expectEvent("ready");
        const [feedB, feedC] = feeds;
        // Created after the grant and after the subscription opened: covered all the same.
        const shared = await createStream(ctx, a, { type: "org.example.shared" });
        const hidden = await createStream(ctx, a, { type: "org.example.private" });
        await append(a, hidden.name, [{ secret: 1 }], { clientSequence: 1 });
        await append(a, shared.name, [{ n: 1 }, { n: 2 }], { clientSequence: 1 });
        const checkpoint = async (streams: string[]) => (await a.clients.checkpoints.createCheckpoint({ parent: a.subject, checkpointId: "", streams: streams.map((stream) => ({ stream })), resume: undefined })).checkpoint!;
        const mixed = await checkpoint([shared.name, hidden.name]);
        const readable = await checkpoint([shared.name]);
        await a.clients.checkpoints.offerHandoff({ parent: a.subject, checkpoint: mixed.name, targetDevice: "", ttlSeconds: 60 });
        const { handoff } = await a.clients.checkpoints.offerHandoff({ parent: a.subject, checkpoint: readable.name, targetDevice: "", ttlSeconds: 60 });
        await a.clients.streams.compactStream({ stream: shared.name, horizonVersion: 1n });
        await a.clients.streams.deleteStream({ name: shared.name });
        await a.clients.streams.deleteStream({ name: hidden.name });
        const created = await feedB.expectEvent("streamCreated");
        checkEqual(created.event.value.stream?.uid, shared.uid, "the grantee sees a covered stream the owner creates (and not the uncovered one)");
        const appended = await feedB.expectEvent("deltasAppended");
        checkEqual(appended.event.value.deltas.map((d) => [d.stream, d.version]), [[shared.name, 1n], [shared.name, 2n]], "the grantee's DeltasAppended (the uncovered stream's append withheld)");
        const offered = await feedB.expectEvent("handoffOffered");
        checkEqual(offered.event.value.handoff?.name, handoff!.name, "the grantee is offered only the handoff whose checkpoint it may read");
        const compacted = await feedB.expectEvent("streamCompacted");
        checkEqual(compacted.event.value.stream?.horizonVersion, 1n, "StreamCompacted on the grantee's feed");
        const deleted = await feedB.expectEvent("streamDeleted");
        checkEqual(deleted.event.value.streamUid, shared.uid, "StreamDeleted on the grantee's feed (and not the uncovered one's)");
        // c, linked to the subject but holding no grant of a's, sees nothing of a's.
        await expectSentinel(ctx, b, [[feedB, "the grantee's feed"], [feedC, "the feed of a linked platform without a grant from the owner"]]);
      } finally {
        for (const feed of feeds) feed.close();
      }
    },
  }),
  defineCase({
    id: "revocation.streaming-calls-refused-after-device-revocation",
    requirements: ["DEVICE-004", "AUTH-004", "SUB-042"],
    profile: "identity",
    async run(ctx) {
      const phone = await ctx.session();
      const laptop = await ctx.session({ accountId: phone.accountId });
      const stream = await createStream(ctx, phone, { encoding: ENCODING.mergePatch });
      await append(phone, stream.name, [{ a: 1 }, { b: 2 }, { c: 3 }], { clientSequence: 1 });
      const page = await laptop.clients.streams.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 1, pageToken: "" });
      check(page.nextPageToken !== "", "a first page of one delta carries a token");
      const cursor = (await (async () => {
        const sub = openSubscription(laptop, "", ctx.signal);
        try {
          return (await sub.expectEvent("ready")).cursor;
        } finally {
          sub.close();
        }
      })());
      await downloadSnapshot(laptop, stream.name);
      await phone.clients.devices.revokeDevice({ name: laptop.device });
      const revoked = { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" } as const;
      await expectError(downloadSnapshot(laptop, stream.name), revoked, "GetSnapshot (server streaming) with the revoked device's token");
      await expectError(laptop.clients.streams.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 1, pageToken: page.nextPageToken }), revoked, "ListDeltas continuing a page with the revoked device's token");
      for (const from of ["", cursor]) {
        const sub = openSubscription(laptop, from, ctx.signal);
        try {
          checkError(await sub.ended(), revoked, `Subscribe ${from === "" ? "from now" : "from an earlier cursor"} with the revoked device's token`);
          checkEqual(sub.received.length, 0, "messages sent to a revoked device's new subscription");
        } finally {
          sub.close();
        }
      }
      await downloadSnapshot(phone, stream.name);
    },
  }),
  defineCase({
    id: "revocation.streaming-calls-after-grant-revocation",
    requirements: ["GRANT-006", "ISO-010", "ISO-013", "SNAP-008", "DELTA-014", "SUB-014", "DELTA-024"],
    profile: "identity",
    async run(ctx) {
      const a = await ctx.session();
      const b = await linkAccount(ctx, a, ctx.platforms.b, "b");
      const stream = await createStream(ctx, a, { encoding: ENCODING.mergePatch, type: "org.example.shared" });
      const opaque = await createStream(ctx, a, { encoding: ENCODING.opaque, type: "org.example.shared" });
      const granted = await grant(a, b, "org.example.shared", v1.GrantAccess.GRANT_ACCESS_READ);
      const cursor = (await (async () => {
        const sub = openSubscription(b, "", ctx.signal);
        try {
          return (await sub.expectEvent("ready")).cursor;
        } finally {
          sub.close();
        }
      })());
      await append(a, stream.name, [{ a: 1 }, { b: 2 }, { c: 3 }], { clientSequence: 1 });
      await append(a, opaque.name, [Buffer.from("x")], { clientSequence: 1 });
      const page = await b.clients.streams.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 1, pageToken: "" });
      check(page.nextPageToken !== "", "a first page of one delta carries a token");
      await downloadSnapshot(b, stream.name);
      await downloadSnapshot(b, opaque.name);
      await a.clients.consent.revokeGrant({ name: granted.name });
      await expectError(downloadSnapshot(b, stream.name), NOT_FOUND, "GetSnapshot of a JSON stream after the grant was revoked");
      await expectError(downloadSnapshot(b, opaque.name), NOT_FOUND, "GetSnapshot of an opaque stream after the grant was revoked");
      await expectError(b.clients.streams.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 1, pageToken: page.nextPageToken }), NOT_FOUND, "ListDeltas continuing, with a page token minted before the revocation");
      // A feed resumed from before the revocation must not replay what is no longer readable.
      await append(a, stream.name, [{ d: 4 }], { clientSequence: 2 });
      const own = await createStream(ctx, b, { type: "org.example.own" });
      const sub = openSubscription(b, cursor, ctx.signal);
      try {
        await sub.expectEvent("ready");
        for (;;) {
          let message;
          try {
            message = await sub.nextEvent();
          } catch (error) {
            // Ending the replay with the revocation is allowed (SUB-040), with its reason.
            checkError(error, { code: Status.PERMISSION_DENIED, reason: "GRANT_REVOKED" }, "a replay that reached the revocation");
            break;
          }
          const event = message.event;
          if (event?.$case === "deltasAppended") fail(`a resumed feed delivered deltas of ${event.value.deltas[0]?.stream} after the platform lost read access to it`);
          if (event?.$case === "accessRevoked") continue;
          if (event?.$case === "streamCreated" && event.value.stream?.uid === own.uid) break;
          fail(`a resumed feed delivered ${event?.$case ?? "nothing"} about a stream no longer readable`);
        }
      } finally {
        sub.close();
      }
    },
  }),
];
