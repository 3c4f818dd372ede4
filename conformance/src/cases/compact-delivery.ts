import type { continuity } from "@continuity/sdk/gen";
import { v1 } from "../harness/clients.js";
import { createCompactRebuilder, declaresCompact } from "../harness/compact-delivery.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, checkError, fail, Status } from "../harness/expect.js";
import { append, createStream, ENCODING } from "../harness/streams.js";
import { expectImported, exportParts, importRaw, recordOf, recordPart, reseal, type BundlePart } from "../portability/bundle.js";
import { cursorNow, openSubscription, type SubscriptionReader } from "../harness/subscription.js";

type SubscribeResponse = continuity.v1.SubscribeResponse;
const COMPACT = v1.DeliveryForm.DELIVERY_FORM_COMPACT;

/** Reads messages (heartbeats included) until `last` says the one it waits for came; at most `limit`. */
async function readUntil(sub: SubscriptionReader, last: (message: SubscribeResponse) => boolean, limit = 64): Promise<SubscribeResponse[]> {
  const out: SubscribeResponse[] = [];
  for (let i = 0; i < limit; i++) {
    const message = await sub.next(10_000);
    out.push(message);
    if (last(message)) return out;
  }
  return fail(`the awaited event did not arrive within ${limit} messages`);
}

/** Whether a full-form (or rebuilt) message delivers version `version` of the stream with `uid`. */
const delivers = (uid: string, version: bigint) => (message: SubscribeResponse) =>
  message.event?.$case === "deltasAppended" && message.event.value.deltas.some((d) => d.streamUid === uid && d.version === version);

/** Events without heartbeats and without cursors: what two forms of one feed must agree on. */
const eventsOf = (messages: readonly SubscribeResponse[]) => messages.filter((m) => m.event?.$case !== "heartbeat").map((m) => m.event);

/** Waits until `sub` has received its first message (leaving it to be read): it is then on the feed. */
async function started(sub: SubscriptionReader): Promise<void> {
  for (const deadline = Date.now() + 10_000; sub.received.length === 0; ) {
    if (Date.now() > deadline) fail("no first message (ready) within 10 s");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Reads the full call until `last` says its awaited message came, then the compact call of the
 * same feed until it has rebuilt as many events, each checked field for field against the full
 * call's (SUB-064). Both calls start at their first message. Returns how many batches came
 * compact, of how many.
 */
async function expectRebuiltAsFull(full: SubscriptionReader, compact: SubscriptionReader, last: (message: SubscribeResponse) => boolean, what?: string): Promise<{ compact: number; batches: number }> {
  const expected = eventsOf((await readUntil(full, last)).slice(1));
  const rebuilder = createCompactRebuilder(true, true);
  let compactBatches = 0;
  let first = true;
  let seen = 0;
  await readUntil(compact, (message) => {
    if (message.event?.$case === "compactDeltasAppended") compactBatches++;
    const whole = rebuilder.rebuild(message);
    if (first || whole.event?.$case === "heartbeat") {
      first = false;
      return false;
    }
    checkEqual(whole.event, expected[seen], `${what === undefined ? "" : `${what}: `}event ${seen + 1} (${expected[seen]?.$case ?? "?"}) rebuilt from the compact call, against the full call`);
    seen++;
    return seen === expected.length;
  });
  return { compact: compactBatches, batches: expected.filter((e) => e?.$case === "deltasAppended").length };
}

/**
 * Compact delivery (SUB-060 … SUB-065): opt-in, declared, and rebuilt by the client into
 * exactly the full form — with indexes that never name two streams, hashes left out only
 * where the client holds them, and cursors that resume exactly.
 */
export const COMPACT_DELIVERY_CASES = [
  defineCase({
    id: "subscription.compact-only-when-asked",
    requirements: ["SUB-060", "SUB-009"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const declared = await declaresCompact(session.clients);
      // Unset, FULL and a value no server knows get the full form; so does COMPACT from a
      // server that does not list it.
      const forms: { form: number | undefined; what: string }[] = [
        { form: undefined, what: "delivery_form unset" },
        { form: v1.DeliveryForm.DELIVERY_FORM_FULL, what: "DELIVERY_FORM_FULL" },
        { form: 97, what: "an unknown delivery_form (97)" },
        ...(declared ? [] : [{ form: COMPACT, what: "DELIVERY_FORM_COMPACT, which the server does not list" }]),
      ];
      let sequence = 0;
      for (const { form, what } of forms) {
        const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
        const sub = openSubscription(session, await cursorNow(session, ctx.signal), ctx.signal, 1, form);
        try {
          const rebuilder = createCompactRebuilder(form === COMPACT, declared);
          rebuilder.rebuild(await sub.next());
          await append(session, stream.name, [[{ op: "add", path: "/a", value: 1 }]], { clientSequence: 1 });
          await append(session, stream.name, [[{ op: "add", path: "/b", value: 2 }], [{ op: "add", path: "/c", value: 3 }]], { clientSequence: 2 });
          sequence += 2;
          // Both batches, then a heartbeat: every message checked as it comes.
          let batched = false;
          await readUntil(sub, (message) => {
            rebuilder.rebuild(message);
            check(message.cursor !== "", `SUB-009 (${what}): every message of a full call carries its cursor; a ${message.event?.$case ?? "message"} came without`);
            batched ||= delivers(stream.uid, 3n)(message);
            return batched && message.event?.$case === "heartbeat";
          });
        } finally {
          sub.close();
        }
      }
      ctx.note(`checked ${forms.length} requests (${sequence} batches) for the full form`);
    },
  }),

  defineCase({
    id: "subscription.compact-rebuilds-the-full-form",
    requirements: ["SUB-061", "SUB-062", "SUB-063", "SUB-064", "SUB-010", "SUB-011"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      if (!(await declaresCompact(session.clients))) ctx.skip("the server does not list DELIVERY_FORM_COMPACT in ServerInfo.delivery_forms");
      // Stream a has history before the call: its first batch in the call must carry prev_hash.
      const a = await createStream(ctx, session);
      await append(session, a.name, [{ v: 1 }], { clientSequence: 1 });
      await append(session, a.name, [{ v: 2 }], { clientSequence: 2 });
      const from = await cursorNow(session, ctx.signal);
      const full = openSubscription(session, from, ctx.signal, 0, v1.DeliveryForm.DELIVERY_FORM_FULL);
      const compact = openSubscription(session, from, ctx.signal, 0, COMPACT);
      try {
        await append(session, a.name, [{ v: 3 }], { clientSequence: 3 });
        // Stream b is new: its first batch is version 1, and still carries prev_hash (the genesis).
        const b = await createStream(ctx, session);
        await append(session, b.name, [{ w: 1 }, { w: 2 }, { w: 3 }], { clientSequence: 1 });
        // A batch of another stream in between, then a's chain goes on.
        await append(session, a.name, [{ v: 4 }], { clientSequence: 4 });
        await append(session, b.name, [{ w: 4 }], { clientSequence: 2 });
        // Compaction moves a's horizon; its chain goes on.
        await session.clients.streams.compactStream({ stream: a.name, horizonVersion: 3n });
        await append(session, a.name, [{ v: 5 }], { clientSequence: 5 });
        // A restore appends a server-made compensating delta (client sequence 0).
        const { checkpoint } = await session.clients.checkpoints.createCheckpoint({
          parent: session.subject,
          checkpointId: "",
          streams: [{ stream: b.name }],
          resume: { activityType: "org.example.lesson", resource: "r", position: "p", fallbackUrl: "https://example.org/r", attributes: {} },
        });
        await append(session, b.name, [{ w: 5 }], { clientSequence: 3 });
        await session.clients.checkpoints.restoreCheckpoint({ name: checkpoint!.name });
        // a is deleted and created again under the same id: another stream, another uid.
        await session.clients.streams.deleteStream({ name: a.name });
        const again = await createStream(ctx, session, { streamId: a.name.split("/").at(-1)! });
        check(again.uid !== a.uid, "a stream created again under a deleted one's id has a new uid (STREAM rules)");
        await append(session, again.name, [{ x: 1 }], { clientSequence: 1 });
        await append(session, again.name, [{ x: 2 }], { clientSequence: 2 });

        // SUB-064: the compact call, rebuilt event by event, is field for field the full call.
        const { compact: compactBatches, batches } = await expectRebuiltAsFull(full, compact, delivers(again.uid, 2n));
        ctx.note(`${compactBatches} of ${batches} batches came compact`);
      } finally {
        full.close();
        compact.close();
      }
    },
  }),

  defineCase({
    id: "subscription.compact-cursor-resumes-exactly",
    requirements: ["SUB-065", "SUB-009", "SUB-003", "SUB-004"],
    profile: "core",
    timeoutMs: 90_000,
    async run(ctx) {
      const session = await ctx.session();
      if (!(await declaresCompact(session.clients))) ctx.skip("the server does not list DELIVERY_FORM_COMPACT in ServerInfo.delivery_forms");
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      const sub = openSubscription(session, await cursorNow(session, ctx.signal), ctx.signal, 1, COMPACT);
      const rebuilder = createCompactRebuilder(true, true);
      let messages: SubscribeResponse[];
      try {
        rebuilder.rebuild(await sub.next());
        await append(session, stream.name, [[{ op: "add", path: "/a", value: 1 }]], { clientSequence: 1 });
        await append(session, stream.name, [[{ op: "add", path: "/b", value: 2 }], [{ op: "add", path: "/c", value: 3 }]], { clientSequence: 2 });
        // An event that is not a batch, and a heartbeat: their cursors are positions too (SUB-009).
        await createStream(ctx, session);
        messages = [];
        await readUntil(sub, (message) => {
          const whole = rebuilder.rebuild(message);
          messages.push(whole);
          return whole.event?.$case === "heartbeat" && messages.some((m) => m.event?.$case === "streamCreated");
        });
        await append(session, stream.name, [[{ op: "add", path: "/d", value: 4 }]], { clientSequence: 3 });
        messages.push(...(await readUntil(sub, (m) => m.event?.$case !== "heartbeat")).map((message) => rebuilder.rebuild(message)));
      } finally {
        sub.close();
      }
      const batches = messages.filter((m) => m.event?.$case === "deltasAppended");
      checkEqual(batches.length, 3, "batches delivered");
      // SUB-004: a rebuilt cursor with one byte changed is not one the server minted.
      const bytes = Buffer.from(batches[0]!.cursor, "base64url");
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0x01, bytes.length - 1);
      const forged = openSubscription(session, bytes.toString("base64url"), ctx.signal, 0, COMPACT);
      try {
        checkError(await forged.ended(), { code: Status.INVALID_ARGUMENT, reason: "INVALID_CURSOR" }, "SUB-004: a rebuilt compact cursor with its last byte changed");
        check(forged.received.length === 0, "SUB-004: no message before INVALID_CURSOR");
      } finally {
        forged.close();
      }
      // Resubscribing from the cursor of each message, in the full form and in the compact
      // one, delivers exactly the events after it: none missing, none again.
      for (const [i, message] of messages.entries()) {
        const after = eventsOf(messages.slice(i + 1));
        for (const form of [v1.DeliveryForm.DELIVERY_FORM_FULL, COMPACT]) {
          const again = openSubscription(session, message.cursor, ctx.signal, 0, form);
          const again_ = createCompactRebuilder(form === COMPACT, true);
          try {
            const first = again_.rebuild(await again.next());
            check(first.event?.$case === "ready", `SUB-065: resubscribing with the cursor of message ${i + 1} (${message.event?.$case}) must be answered with ready, got ${first.event?.$case ?? "nothing"}`);
            checkEqual(first.cursor, message.cursor, "SUB-003: ready carries the cursor it was given");
            const got: SubscribeResponse[] = [];
            while (got.filter((m) => m.event?.$case !== "heartbeat").length < after.length) got.push(again_.rebuild(await again.next()));
            checkEqual(eventsOf(got), after, `events after the cursor of message ${i + 1} (${message.event?.$case}), resumed in the ${form === COMPACT ? "compact" : "full"} form`);
            await again.expectQuiet(300);
          } finally {
            again.close();
          }
        }
      }
    },
  }),
  defineCase({
    id: "subscription.compact-indexes-belong-to-their-call",
    requirements: ["SUB-062", "SUB-063", "SUB-064"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      if (!(await declaresCompact(session.clients))) ctx.skip("the server does not list DELIVERY_FORM_COMPACT in ServerInfo.delivery_forms");
      const a = await createStream(ctx, session);
      const b = await createStream(ctx, session);
      const from = await cursorNow(session, ctx.signal);
      const earlyFull = openSubscription(session, from, ctx.signal, 0, v1.DeliveryForm.DELIVERY_FORM_FULL);
      const early = openSubscription(session, from, ctx.signal, 0, COMPACT);
      const calls = [earlyFull, early];
      try {
        // The early calls index a, then b, and hold both chains.
        await append(session, a.name, [{ v: 1 }], { clientSequence: 1 });
        await append(session, b.name, [{ w: 1 }], { clientSequence: 1 });
        // Calls opened later at one position of the same feed, both live before the next
        // commits: each of those batches goes to four calls, and needs another rendering in
        // each compact one (the late call first meets b, defines it as its index 1 with its
        // device and prev_hash; the early one names b by its index 2 and holds its chain).
        const at = await cursorNow(session, ctx.signal);
        const lateFull = openSubscription(session, at, ctx.signal, 0, v1.DeliveryForm.DELIVERY_FORM_FULL);
        const late = openSubscription(session, at, ctx.signal, 0, COMPACT);
        calls.push(lateFull, late);
        await Promise.all([started(lateFull), started(late)]);
        await append(session, b.name, [{ w: 2 }], { clientSequence: 2 });
        await append(session, a.name, [{ v: 2 }], { clientSequence: 2 });
        const earlyRebuilt = await expectRebuiltAsFull(earlyFull, early, delivers(a.uid, 2n), "the call opened first");
        const lateRebuilt = await expectRebuiltAsFull(lateFull, late, delivers(a.uid, 2n), "the call opened later");
        ctx.note(`${earlyRebuilt.compact} of ${earlyRebuilt.batches} batches came compact on the call opened first, ${lateRebuilt.compact} of ${lateRebuilt.batches} on the one opened later`);
      } finally {
        for (const call of calls) call.close();
      }
    },
  }),

  defineCase({
    id: "subscription.compact-prev-hash-where-the-chain-restarts",
    requirements: ["SUB-063", "SUB-064"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const session = await ctx.session();
      if (!(await declaresCompact(session.clients))) ctx.skip("the server does not list DELIVERY_FORM_COMPACT in ServerInfo.delivery_forms");
      const stream = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      const from = await cursorNow(session, ctx.signal);
      const full = openSubscription(session, from, ctx.signal, 0, v1.DeliveryForm.DELIVERY_FORM_FULL);
      const compact = openSubscription(session, from, ctx.signal, 0, COMPACT);
      try {
        await append(session, stream.name, [{ a: 1 }], { clientSequence: 1 });
        await append(session, stream.name, [{ b: 2 }], { clientSequence: 2 });
        // The stream deleted and imported again from its own export: the same name and uid,
        // so the same index may name it, but its history starts again at version 1, whose
        // prev_hash is the genesis hash, not the hash of version 2 this call delivered last.
        const bundle = (await exportParts(ctx, session.token, session.subject)).map((part) => part.bytes);
        await session.clients.streams.deleteStream({ name: stream.name });
        expectImported(await importRaw(ctx, session.token, bundle), "importing the subject's own export after deleting its stream");
        const { stream: again } = await session.clients.streams.getStream({ name: stream.name });
        checkEqual([again?.uid, again?.headVersion], [stream.uid, 2n], "the stream imported again");
        // Its chain then goes on from the imported head.
        await append(session, stream.name, [{ c: 3 }], { clientSequence: 3 });
        const rebuilt = await expectRebuiltAsFull(full, compact, delivers(stream.uid, 3n), "a stream whose chain starts again in the call");
        ctx.note(`${rebuilt.compact} of ${rebuilt.batches} batches came compact`);
      } finally {
        full.close();
        compact.close();
      }
    },
  }),
  defineCase({
    id: "subscription.compact-batch-without-a-device",
    requirements: ["SUB-062", "SUB-064", "PORT-047"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const session = await ctx.session();
      if (!(await declaresCompact(session.clients))) ctx.skip("the server does not list DELIVERY_FORM_COMPACT in ServerInfo.delivery_forms");
      const stream = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      await append(session, stream.name, [{ a: 1 }], { clientSequence: 1 });
      await append(session, stream.name, [{ b: 2 }], { clientSequence: 2 });
      // Deltas without a device come only from a bundle (PORT-047): the subject's own export,
      // its two deltas' devices emptied (a delta's hash does not cover its device), imported
      // again after the stream is deleted, while both forms of one feed look on.
      const exported = await exportParts(ctx, session.token, session.subject);
      const changes = new Map<number, BundlePart>();
      exported.forEach((part, index) => {
        const record = recordOf(part);
        if (record?.$case === "delta" && record.value.streamUid === stream.uid) changes.set(index, recordPart({ $case: "delta", value: { ...record.value, device: "", clientSequence: 0n } }));
      });
      checkEqual(changes.size, 2, "delta records of the stream in its export");
      // The whole export goes back: the records the subject still holds are skipped.
      const bundle = reseal(exported, changes).map((part) => part.bytes);
      await session.clients.streams.deleteStream({ name: stream.name });
      const from = await cursorNow(session, ctx.signal);
      const full = openSubscription(session, from, ctx.signal, 0, v1.DeliveryForm.DELIVERY_FORM_FULL);
      const compact = openSubscription(session, from, ctx.signal, 0, COMPACT);
      try {
        await started(full);
        await started(compact);
        expectImported(await importRaw(ctx, session.token, bundle), "importing the subject's own export with deviceless deltas");
        // Then a batch of this device, its first on the stream as imported (the imported
        // deltas name no device): the first index the call defines for a device.
        await append(session, stream.name, [{ c: 3 }], { clientSequence: 1 });
        const rebuilt = await expectRebuiltAsFull(full, compact, delivers(stream.uid, 3n), "deviceless batches, then one of a device");
        ctx.note(`${rebuilt.compact} of ${rebuilt.batches} batches came compact`);
      } finally {
        full.close();
        compact.close();
      }
    },
  }),
];
