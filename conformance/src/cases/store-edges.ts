import { defineCase } from "../harness/define-case.js";
import { check, checkBytes, checkEqual, expectError, fail, Status } from "../harness/expect.js";
import { richErrorOf } from "../harness/raw-call.js";
import { append, createStream, ENCODING } from "../harness/streams.js";
import { exportRaw, importRaw } from "../portability/bundle.js";
import { cursorNow, openSubscription } from "../harness/subscription.js";

/**
 * Where the store keeps protocol state that the other cases reach only on its common path,
 * found by mutation testing of the reference server's SQLite store: outcomes that arrive by
 * import rather than by an append.
 */
export const STORE_EDGE_CASES = [
  defineCase({
    id: "store-edges.imported-outcome-replays",
    requirements: ["PORT-027"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      // A device's last batch is exported, its subject erased and the bundle imported into
      // another subject. The same device, repeating that batch's client sequence on the
      // target, gets the stored outcome (no request fingerprint travels in a bundle, so the
      // repeat cannot be compared with one), and its sequence continues after it.
      const owner = await ctx.session();
      const streamId = ctx.uniqueId("moved");
      const stream = await createStream(ctx, owner, { encoding: ENCODING.mergePatch, streamId });
      await append(owner, stream.name, [{ a: 1 }], { clientSequence: 1 });
      const last = await append(owner, stream.name, [{ b: 1 }, { c: 1 }], { clientSequence: 2 });
      let bytes: Buffer[];
      try {
        bytes = await exportRaw(ctx, owner.token, owner.subject);
      } catch (error) {
        throw richErrorOf("/continuity.v1.PortabilityService/ExportSubject", error as never);
      }
      await owner.clients.subjects.deleteSubject({ name: owner.subject });
      const target = await ctx.session();
      const outcome = await importRaw(ctx, target.token, bytes);
      if (!outcome.ok) {
        const rich = richErrorOf("/continuity.v1.PortabilityService/ImportBundle", outcome.error);
        fail(`importing the bundle: unexpected ${Status[rich.code]} ${rich.details}`);
      }
      const device = await ctx.session({ accountId: owner.accountId, deviceId: owner.deviceId });
      checkEqual(device.subject, target.subject, "the exported account, imported, belongs to the target subject");
      const name = `${target.subject}/streams/${streamId}`;
      const replay = await append(device, name, [{ b: 1 }, { c: 1 }], { clientSequence: 2 });
      checkEqual(replay.replayed, true, "AppendDeltasResponse.replayed for a repeat of the imported last client sequence");
      checkEqual(replay.receipts.map((r) => r.version), [2n, 3n], "receipts of the replayed imported batch");
      replay.receipts.forEach((r, i) => checkBytes(r.hash, last.receipts[i]!.hash, `hash of receipt ${i} of the replayed imported batch`));
      checkEqual(replay.headVersion, 3n, "head_version of the replayed imported batch");
      checkBytes(replay.headHash, last.headHash, "head_hash of the replayed imported batch");
      const { stream: after } = await device.clients.streams.getStream({ name });
      checkEqual(after?.headVersion, 3n, "the stream's head after the replay: nothing was appended");
      await expectError(append(device, name, [{ d: 1 }], { clientSequence: 4 }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_GAP", metadata: { expectedSequence: "3" } }, "skipping a number after the imported sequence");
      const next = await append(device, name, [{ d: 1 }], { clientSequence: 3 });
      checkEqual([next.replayed, next.headVersion], [false, 4n], "the next client sequence after the imported one appends");
    },
  }),
  defineCase({
    id: "store-edges.resume-across-deleted-and-recreated-streams",
    requirements: ["SUB-003", "SUB-011", "SUB-013"],
    profile: "core",
    async run(ctx) {
      // A device resumes from a cursor older than two streams' whole lives: one deleted, one
      // deleted and created again under its id. The feed replays in commit order; a batch of a
      // deleted stream may be left out (its deltas are gone with it) but never carries the
      // deltas of the stream that later took its id, which did not exist yet.
      const session = await ctx.session();
      const other = await ctx.session({ accountId: session.accountId });
      const cursor = await cursorNow(session, ctx.signal);
      const reusedId = ctx.uniqueId("reused");
      const gone = await createStream(ctx, session);
      await append(session, gone.name, [{ g: 1 }], { clientSequence: 1 });
      const first = await createStream(ctx, session, { streamId: reusedId });
      await append(session, first.name, [{ f: 1 }], { clientSequence: 1 });
      await append(session, first.name, [{ f: 2 }, { f: 3 }], { clientSequence: 2 });
      await session.clients.streams.deleteStream({ name: gone.name });
      await session.clients.streams.deleteStream({ name: first.name });
      const second = await createStream(ctx, other, { streamId: reusedId });
      await append(other, second.name, [{ s: 1 }], { clientSequence: 1 });

      const sub = openSubscription(session, cursor, ctx.signal);
      try {
        const ready = await sub.nextEvent(10_000);
        checkEqual(ready.event?.$case, "ready", "first message when resuming from a retained cursor");
        // What each uid's batches hold, in version order, as appended.
        const batches = new Map<string, string[][]>([
          [gone.uid, [["1"]]],
          [first.uid, [["1"], ["2", "3"]]],
          [second.uid, [["1"]]],
        ]);
        const live = new Set<string>();
        const kinds: string[] = [];
        for (;;) {
          const message = await sub.nextEvent(10_000);
          const event = message.event;
          if (event?.$case === "streamCreated") {
            live.add(event.value.stream?.uid ?? "");
            kinds.push(`created ${event.value.stream?.uid}`);
          } else if (event?.$case === "streamDeleted") {
            live.delete(event.value.streamUid);
            kinds.push(`deleted ${event.value.streamUid}`);
          } else if (event?.$case === "deltasAppended") {
            const uids = [...new Set(event.value.deltas.map((d) => d.streamUid))];
            checkEqual(uids.length, 1, "streams whose deltas one DeltasAppended event holds");
            const uid = uids[0]!;
            check(live.has(uid), `a DeltasAppended event of stream uid ${uid} came while that stream did not exist (after: ${kinds.join(", ")})`);
            // Batches of a deleted stream may be left out, so the next one sent need not be the next appended.
            const versions = event.value.deltas.map((d) => String(d.version));
            const pending = batches.get(uid) ?? [];
            const at = pending.findIndex((b) => b[0] === versions[0]);
            check(at >= 0, `a DeltasAppended event of stream uid ${uid} from version ${versions[0]}: no such batch is left to deliver`);
            checkEqual(versions, pending[at], `the batch of stream uid ${uid} from version ${versions[0]}`);
            pending.splice(0, at + 1);
            if (uid === second.uid) break;
          } else {
            fail(`unexpected ${event?.$case ?? "empty"} message while replaying the feed`);
          }
        }
        checkEqual(kinds, [`created ${gone.uid}`, `created ${first.uid}`, `deleted ${gone.uid}`, `deleted ${first.uid}`, `created ${second.uid}`], "stream events of the replayed feed, in commit order");
      } finally {
        sub.close();
      }
    },
  }),
  defineCase({
    id: "store-edges.checkpoint-entries-ordered-whatever-the-request-order",
    requirements: ["CKPT-002"],
    profile: "core",
    async run(ctx) {
      // The streams are named in descending uid order, so a server that keeps the request's
      // order (or sorts another way) fails every time, not only when random uids fall so.
      const session = await ctx.session();
      const streams: Awaited<ReturnType<typeof createStream>>[] = [];
      for (let i = 0; i < 4; i++) streams.push(await createStream(ctx, session));
      const byUid = (a: string, b: string) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
      const descending = [...streams].sort((a, b) => byUid(b.uid, a.uid));
      const ascending = descending.map((s) => s.uid).reverse();
      const { checkpoint } = await session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: descending.map((s) => ({ stream: s.name })), resume: undefined });
      checkEqual(checkpoint?.entries.map((e) => e.streamUid), ascending, "CreateCheckpoint: entries of streams named in descending uid order");
      const { checkpoint: read } = await session.clients.checkpoints.getCheckpoint({ name: checkpoint!.name });
      checkEqual(read?.entries.map((e) => e.streamUid), ascending, "GetCheckpoint: entries of the same checkpoint");
      checkEqual(read?.entries.map((e) => e.stream), ascending.map((uid) => streams.find((s) => s.uid === uid)!.name), "GetCheckpoint: each entry names its own stream");
    },
  }),
  defineCase({
    id: "store-edges.repeated-accept-returns-the-checkpoint",
    requirements: ["HANDOFF-008", "HANDOFF-007"],
    profile: "core",
    async run(ctx) {
      // The device whose AcceptHandoff response was lost asks again: it gets the checkpoint it
      // needs to resume, not only the handoff.
      const source = await ctx.session();
      const laptop = await ctx.session({ accountId: source.accountId });
      const stream = await createStream(ctx, source);
      await append(source, stream.name, [{ at: 1 }], { clientSequence: 1 });
      const { checkpoint } = await source.clients.checkpoints.createCheckpoint({ parent: source.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: { activityType: "org.example.lesson", resource: "r", position: "p", fallbackUrl: "", attributes: {} } });
      const { handoff } = await source.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint!.name, targetDevice: "", ttlSeconds: 0 });
      const accepted = await laptop.clients.checkpoints.acceptHandoff({ name: handoff!.name });
      checkEqual(accepted.checkpoint, checkpoint, "AcceptHandoffResponse.checkpoint: the offered checkpoint");
      const again = await laptop.clients.checkpoints.acceptHandoff({ name: handoff!.name });
      checkEqual(again.handoff, accepted.handoff, "the handoff of a repeated accept by the device that accepted it");
      checkEqual(again.checkpoint, checkpoint, "AcceptHandoffResponse.checkpoint of the repeated accept");
    },
  }),
];
