import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, checkError, fail, Status } from "../harness/expect.js";
import { linkAccount } from "../harness/linking.js";
import { append, createStream, ENCODING } from "../harness/streams.js";
import { openSubscription, type SubscriptionReader } from "../harness/subscription.js";
import type { Session } from "../harness/context.js";

/** SUB-015: how long a committed event may take to reach a subscription that reads. */
const PROMPT_MS = 5_000;

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

/**
 * The live feed of a subject as several devices see it at once: each open subscription gets
 * each event promptly, whatever others of the subject opened or ended before it.
 */
export const LIVE_FEED_CASES = [
  defineCase({
    id: "live-feed.every-open-subscription-gets-each-event",
    requirements: ["SUB-015", "SUB-003", "SUB-012", "SUB-045"],
    profile: "core",
    timeoutMs: 40_000,
    async run(ctx) {
      // Four devices of one person; heartbeats at the default 15 s, so an event held back
      // until the next heartbeat misses SUB-015's 5 s.
      const first = await ctx.session();
      const devices = [first, ...(await Promise.all([1, 2, 3].map(() => ctx.session({ accountId: first.accountId }))))];
      for (const device of devices) checkEqual(device.subject, first.subject, "subject of another device of the same account");
      const stream = await createStream(ctx, first);
      let seq = 0;
      /** Appends one batch and checks that exactly the `open` subscriptions get it in time. */
      const commit = async (open: readonly SubscriptionReader[], what: string): Promise<void> => {
        seq += 1;
        const written = await append(first, stream.name, [{ seq }], { clientSequence: seq });
        const version = written.receipts[0]!.version;
        await Promise.all(open.map(async (sub, index) => {
          let event;
          try {
            event = await sub.expectEvent("deltasAppended", { timeoutMs: PROMPT_MS });
          } catch (error) {
            fail(`${what}: subscription ${index + 1} of ${open.length} open did not get version ${version} within ${PROMPT_MS} ms: ${(error as Error).message}`);
          }
          checkEqual(event.event.value.deltas.map((d) => d.version), [version], `${what}: versions delivered to subscription ${index + 1}`);
        }));
      };
      const subs: SubscriptionReader[] = [];
      try {
        // One after another, each subscription joining those already open.
        for (const device of devices.slice(0, 3)) {
          subs.push(await openReady(device, ctx.signal));
          await commit(subs, `with ${subs.length} subscription(s) open`);
        }
        // Subscriptions that end (SUB-045) take nothing from those still open.
        const [a, b, c] = subs as [SubscriptionReader, SubscriptionReader, SubscriptionReader];
        a.close();
        await commit([b, c], "after the first subscription ended");
        c.close();
        await commit([b], "after the first and third ended");
        const d = await openReady(devices[3]!, ctx.signal);
        subs.push(d);
        await commit([b, d], "with a subscription opened after others ended");
        b.close();
        d.close();
        // After every subscription of the subject ended, a new one is fed like the first.
        await new Promise((resolve) => setTimeout(resolve, 200));
        const e = await openReady(devices[0]!, ctx.signal);
        subs.push(e);
        await commit([e], "with a subscription opened after all others ended");
        await e.expectQuiet(200);
      } finally {
        for (const sub of subs) sub.close();
      }
    },
  }),
  defineCase({
    id: "live-feed.subscriptions-of-two-subjects-apart",
    requirements: ["SUB-015", "SUB-051"],
    profile: "core",
    async run(ctx) {
      // Two people subscribed at once: each feed gets its own subject's events promptly, and
      // ending one subscription leaves the other subject's feed as it was.
      const alice = await ctx.session();
      const bob = await ctx.session();
      const aliceSub = await openReady(alice, ctx.signal);
      const bobSub = await openReady(bob, ctx.signal);
      try {
        const aliceStream = await createStream(ctx, alice);
        checkEqual((await aliceSub.expectEvent("streamCreated", { timeoutMs: PROMPT_MS })).event.value.stream?.uid, aliceStream.uid, "Alice's StreamCreated");
        await bobSub.expectQuiet(300);
        aliceSub.close();
        const bobStream = await createStream(ctx, bob);
        checkEqual((await bobSub.expectEvent("streamCreated", { timeoutMs: PROMPT_MS })).event.value.stream?.uid, bobStream.uid, "Bob's StreamCreated after Alice's subscription ended");
      } finally {
        aliceSub.close();
        bobSub.close();
      }
    },
  }),
  defineCase({
    id: "live-feed.unlinked-platform-subscription-ends",
    requirements: ["SUB-043", "SUB-045", "SUB-015"],
    profile: "identity",
    async run(ctx) {
      // Two platforms of one person subscribed at once; the person unlinks one of them. Its
      // subscription ends with TOKEN_REVOKED, the other platform's goes on.
      const owner = await ctx.session();
      const linked = await linkAccount(ctx, owner, ctx.platforms.b, "unlinked");
      const ownerSub = await openReady(owner, ctx.signal);
      const linkedSub = await openReady(linked, ctx.signal);
      try {
        const { accountLinks } = await owner.clients.subjects.listAccountLinks({ parent: owner.subject, pageSize: 0, pageToken: "" });
        const link = accountLinks.find((l) => l.platform === `platforms/${linked.platform.id}`);
        if (link === undefined) fail(`no account link of platforms/${linked.platform.id} listed`);
        await owner.clients.subjects.deleteAccountLink({ name: link.name });
        checkError(await linkedSub.ended(PROMPT_MS), { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "the subscription of the platform whose account link was deleted");
        const stream = await createStream(ctx, owner);
        checkEqual((await ownerSub.expectEvent("streamCreated", { timeoutMs: PROMPT_MS })).event.value.stream?.uid, stream.uid, "the remaining platform's subscription after the other was unlinked");
      } finally {
        ownerSub.close();
        linkedSub.close();
      }
    },
  }),
  defineCase({
    id: "live-feed.prompt-reader-never-cut-by-volume",
    requirements: ["SUB-031", "SUB-033", "SUB-010", "SUB-015"],
    profile: "core",
    // Tens of MiB through one feed: alone, so that a loaded machine does not make it time out.
    exclusive: true,
    timeoutMs: 120_000,
    async run(ctx) {
      // A live reader that takes every message as it comes is not behind, however many bytes
      // pass through its feed: more than a server holds for one subscriber (the reference
      // server: 32 MiB), in batches of up to 1 MiB of the largest deltas, one batch at a time.
      const TOTAL_BYTES = 36 * 1024 * 1024;
      const { maxDeltaBytes, maxBatchBytes, maxBatchDeltas } = ctx.limits;
      const perBatch = Math.max(1, Math.min(maxBatchDeltas, Math.floor(Math.min(maxBatchBytes, 1024 * 1024) / maxDeltaBytes)));
      const batches = Math.min(2_000, Math.ceil(TOTAL_BYTES / (perBatch * maxDeltaBytes)));
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const payload = Buffer.alloc(maxDeltaBytes, 0x5a);
      const sub = await openReady(session, ctx.signal);
      try {
        let version = 0n;
        for (let seq = 1; seq <= batches; seq++) {
          await append(session, stream.name, Array.from({ length: perBatch }, () => payload), { clientSequence: seq });
          let event;
          try {
            event = await sub.expectEvent("deltasAppended", { timeoutMs: 10_000 });
          } catch (error) {
            fail(`batch ${seq} of ${batches} (${perBatch} deltas of ${maxDeltaBytes} bytes) did not reach a reader that read every message: ${(error as Error).message}`);
          }
          const versions = event.event.value.deltas.map((d) => d.version);
          checkEqual(versions, Array.from({ length: perBatch }, (_, i) => version + BigInt(i + 1)), `versions of batch ${seq}`);
          check(event.event.value.deltas.every((d) => d.payload.length === maxDeltaBytes), `payloads of batch ${seq} delivered whole`);
          version += BigInt(perBatch);
        }
        ctx.note(`${batches} batches of ${perBatch} × ${maxDeltaBytes} bytes delivered live`);
      } finally {
        sub.close();
      }
    },
  }),
];
