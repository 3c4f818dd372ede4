import type { continuity } from "@continuity/sdk/gen";
import { v1 } from "../harness/clients.js";
import type { CaseContext, Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkBytes, checkEqual, expectError, fail, Status } from "../harness/expect.js";
import { checkpointDigest, resumePayloadBytes } from "../harness/hashing.js";
import { append, checkJsonState, createStream, downloadSnapshot, ENCODING, listAllDeltas, POLICY, verifyStreamChain } from "../harness/streams.js";
import { cursorNow, openSubscription } from "../harness/subscription.js";
import { linkAccount } from "../harness/linking.js";

type ResumePayload = continuity.v1.ResumePayload;
type Checkpoint = continuity.v1.Checkpoint;

function resume(overrides: Partial<ResumePayload> = {}): ResumePayload {
  return { activityType: "org.example.lesson", resource: "course-42", position: "lesson-4/t=312.5", fallbackUrl: "https://example.org/course-42", attributes: { speed: "1.5", lang: "en" }, ...overrides };
}

/** Recomputes a checkpoint's digest and entry order with the suite's own hashing. */
function verifyCheckpoint(checkpoint: Checkpoint | undefined): asserts checkpoint is Checkpoint {
  check(checkpoint !== undefined, "the checkpoint must be returned");
  const uids = checkpoint.entries.map((entry) => entry.streamUid);
  checkEqual(uids, [...uids].sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b)))), "entries ordered by stream_uid");
  const digest = checkpointDigest({ entries: checkpoint.entries, resume: checkpoint.resume });
  checkBytes(checkpoint.digest, digest, "Checkpoint.digest (recomputed over entries and resume payload)");
}

async function checkpointOf(session: Session, streams: readonly { stream: string; version?: bigint }[], payload: ResumePayload = resume(), checkpointId = ""): Promise<Checkpoint> {
  const response = await session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId, streams: streams.map((s) => ({ stream: s.stream, ...(s.version === undefined ? {} : { version: s.version }) })), resume: payload });
  verifyCheckpoint(response.checkpoint);
  return response.checkpoint;
}

async function twoDevices(ctx: CaseContext): Promise<[Session, Session, Session]> {
  const a = await ctx.session();
  const b = await ctx.session({ accountId: a.accountId });
  const c = await ctx.session({ accountId: a.accountId });
  return [a, b, c];
}

/** A second platform linked to a fresh subject, holding no grant: it may read none of the owner's streams. */
async function ownerAndOtherPlatform(ctx: CaseContext): Promise<{ owner: Session; other: Session }> {
  const owner = await ctx.session();
  return { owner, other: await linkAccount(ctx, owner, ctx.platforms.b, "other") };
}

/** Checkpoints, restore and handoff. */
export const CHECKPOINT_CASES = [
  defineCase({
    id: "checkpoint.entries-and-digest",
    requirements: ["CKPT-002", "CKPT-003", "CKPT-010", "CKPT-020", "HASH-040", "HASH-042"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const streams = [await createStream(ctx, session), await createStream(ctx, session, { encoding: ENCODING.opaque }), await createStream(ctx, session, { encoding: ENCODING.jsonPatch })];
      await append(session, streams[0]!.name, [{ a: 1 }, { b: 2 }], { clientSequence: 1 });
      await append(session, streams[1]!.name, [Buffer.from("x")], { clientSequence: 1 });
      const checkpoint = await checkpointOf(session, [{ stream: streams[0]!.name, version: 1n }, { stream: streams[1]!.name }, { stream: streams[2]!.name }]);
      for (const entry of checkpoint.entries) {
        const { deltas, stream } = await verifyStreamChain(session, entry.stream);
        checkEqual(entry.streamUid, stream.uid, "entry stream_uid");
        const expectedHash = entry.version === 0n ? stream.horizonHash : deltas[Number(entry.version) - 1]!.hash;
        checkBytes(entry.headHash, expectedHash, `entry head_hash of ${entry.stream} at ${entry.version}`);
      }
      const versions = Object.fromEntries(checkpoint.entries.map((e) => [e.stream, e.version]));
      checkEqual([versions[streams[0]!.name], versions[streams[1]!.name], versions[streams[2]!.name]], [1n, 1n, 0n], "captured versions");
      checkEqual([checkpoint.platform, checkpoint.device], [`platforms/${session.platform.id}`, session.device], "checkpoint platform and device");
      check(checkpoint.createTime !== undefined, "Checkpoint.create_time must be set");
      await append(session, streams[0]!.name, [{ c: 3 }], { clientSequence: 2 });
      const { checkpoint: again } = await session.clients.checkpoints.getCheckpoint({ name: checkpoint.name });
      checkEqual(again, checkpoint, "GetCheckpoint returns the checkpoint exactly as created");
      // A resume payload that differs only in one attribute must change the digest.
      const other = await checkpointOf(session, [{ stream: streams[0]!.name, version: 1n }, { stream: streams[1]!.name, version: 1n }, { stream: streams[2]!.name, version: 0n }], resume({ attributes: { speed: "1.5", lang: "de" } }));
      check(!Buffer.from(other.digest).equals(Buffer.from(checkpoint.digest)), "the digest must cover the resume payload");
    },
  }),
  defineCase({
    id: "checkpoint.resume-limit-exact-boundary",
    requirements: ["CKPT-006", "LIMIT-002", "HASH-041"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      const limit = ctx.limits.maxResumePayloadBytes;
      checkEqual(limit, 4096, "Limits.max_resume_payload_bytes");
      const base = resumePayloadBytes(resume({ position: "" })).length;
      const exact = resume({ position: "p".repeat(limit - base) });
      checkEqual(resumePayloadBytes(exact).length, limit, "suite self-check: canonical resume length");
      await checkpointOf(session, [{ stream: stream.name }], exact);
      await expectError(
        session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: resume({ position: "p".repeat(limit - base + 1) }) }),
        { code: Status.RESOURCE_EXHAUSTED, reason: "RESUME_PAYLOAD_TOO_LARGE", metadata: { limit: String(limit) } },
        "resume payload one byte over the limit",
      );
      // Multi-byte characters count as bytes, not characters.
      const twoByte = resume({ position: "é".repeat(Math.floor((limit - base) / 2) + 1) });
      await expectError(session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: twoByte }), { code: Status.RESOURCE_EXHAUSTED, reason: "RESUME_PAYLOAD_TOO_LARGE" }, "resume payload over the limit in UTF-8 bytes");
    },
  }),
  defineCase({
    id: "checkpoint.atomic-capture",
    requirements: ["CKPT-001"],
    profile: "core",
    timeoutMs: 40_000,
    async run(ctx) {
      const session = await ctx.session();
      const first = await createStream(ctx, session);
      const second = await createStream(ctx, session);
      // The writer always appends to `first` then `second`, so at every instant
      // v(second) <= v(first) <= v(second) + 1. A capture that reads the streams at two
      // moments can break that.
      let stop = false;
      const writer = (async () => {
        for (let seq = 1; !stop && seq <= 400; seq++) {
          await append(session, first.name, [{ n: seq }], { clientSequence: seq });
          await append(session, second.name, [{ n: seq }], { clientSequence: seq });
        }
      })();
      try {
        for (let i = 0; i < 25; i++) {
          const checkpoint = await checkpointOf(session, [{ stream: first.name }, { stream: second.name }]);
          const a = checkpoint.entries.find((e) => e.stream === first.name)!.version;
          const b = checkpoint.entries.find((e) => e.stream === second.name)!.version;
          if (!(b <= a && a <= b + 1n)) fail(`checkpoint captured ${first.name}@${a} and ${second.name}@${b}, a state that never existed`);
        }
      } finally {
        stop = true;
        await writer;
      }
    },
  }),
  defineCase({
    id: "checkpoint.validation",
    requirements: ["CKPT-004", "CKPT-005", "CKPT-007", "CKPT-008", "CKPT-022", "CKPT-024"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      const create = (streams: { stream: string; version?: bigint }[], extra: Partial<continuity.v1.CreateCheckpointRequest> = {}) =>
        session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams, resume: resume(), ...extra });
      await expectError(create([{ stream: stream.name, version: 5n }]), { code: Status.OUT_OF_RANGE, reason: "VERSION_AHEAD_OF_HEAD" }, "checkpoint version above the head");
      await expectError(create([]), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["streams"] }, "checkpoint of no stream");
      await expectError(create([{ stream: stream.name }, { stream: stream.name }]), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["streams"] }, "checkpoint naming a stream twice");
      await expectError(create([{ stream: stream.name }], { resume: resume({ fallbackUrl: "http://example.org/insecure" }) }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["resume.fallback_url"] }, "non-https fallback_url");
      for (const key of ["", "1st", "has space", "-dash", "x".repeat(65)]) {
        await expectError(create([{ stream: stream.name }], { resume: resume({ attributes: { [key]: "v" } }) }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["resume.attributes"] }, `resume attribute key ${JSON.stringify(key)}`);
      }
      await checkpointOf(session, [{ stream: stream.name }], resume({ attributes: { chapter: "4", "playback.rate": "1.5", A_b: "x" } }));
      const id = ctx.uniqueId("cp");
      const made = await checkpointOf(session, [{ stream: stream.name }], resume(), id);
      checkEqual(made.name, `${session.subject}/checkpoints/${id}`, "checkpoint name");
      await expectError(create([{ stream: stream.name }], { checkpointId: id }), { code: Status.ALREADY_EXISTS, reason: "CHECKPOINT_ALREADY_EXISTS" }, "checkpoint id reused");
      await session.clients.checkpoints.deleteCheckpoint({ name: made.name });
      await expectError(session.clients.checkpoints.getCheckpoint({ name: made.name }), { code: Status.NOT_FOUND, reason: "CHECKPOINT_NOT_FOUND" }, "GetCheckpoint after delete");
    },
  }),
  defineCase({
    id: "restore.compensating-deltas",
    requirements: ["RESTORE-001", "RESTORE-002", "RESTORE-003", "RESTORE-007", "RESTORE-008"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const patch = await createStream(ctx, session, { encoding: ENCODING.jsonPatch, policy: POLICY.blind });
      const merge = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      const untouched = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      await append(session, patch.name, [[{ op: "add", path: "/items", value: ["a"] }]], { clientSequence: 1, expectedVersion: 0 });
      await append(session, merge.name, [{ page: 10, font: "serif" }], { clientSequence: 1 });
      await append(session, untouched.name, [{ same: true }], { clientSequence: 1 });
      const checkpoint = await checkpointOf(session, [{ stream: patch.name }, { stream: merge.name }, { stream: untouched.name }]);
      await append(session, patch.name, [[{ op: "add", path: "/items/-", value: "b" }, { op: "add", path: "/total", value: 2 }]], { clientSequence: 2, expectedVersion: 1 });
      await append(session, merge.name, [{ page: 99, font: null, zoom: 2 }], { clientSequence: 2 });
      const before = { patch: await listAllDeltas(session, patch.name), merge: await listAllDeltas(session, merge.name) };
      const restored = await session.clients.checkpoints.restoreCheckpoint({ name: checkpoint.name });
      checkEqual(restored.streams.map((s) => s.stream), checkpoint.entries.map((e) => e.stream), "RestoredStream order follows the checkpoint's entries");
      const byName = Object.fromEntries(restored.streams.map((s) => [s.stream, s]));
      checkEqual([byName[patch.name]?.version, byName[merge.name]?.version, byName[untouched.name]?.version], [3n, 3n, 0n], "versions of compensating deltas (0 = nothing appended)");
      for (const [name, prior] of [[patch.name, before.patch], [merge.name, before.merge]] as const) {
        const { deltas, stream } = await verifyStreamChain(session, name);
        checkEqual(deltas.slice(0, prior.length), prior, `history of ${name} is not rewritten`);
        checkEqual(deltas.length, prior.length + 1, `exactly one compensating delta on ${name}`);
        const compensating = deltas.at(-1)!;
        checkEqual([compensating.device, compensating.clientSequence, compensating.encoding], [session.device, 0n, stream.encoding], "compensating delta device, client_sequence 0, own encoding");
        checkBytes(byName[name]?.headHash, stream.headHash, "RestoredStream.head_hash");
      }
      checkJsonState(await downloadSnapshot(session, patch.name), { items: ["a"] }, "patch stream state after restore");
      checkJsonState(await downloadSnapshot(session, merge.name), { page: 10, font: "serif" }, "merge stream state after restore");
      const next = await append(session, patch.name, [[{ op: "add", path: "/items/-", value: "c" }]], { clientSequence: 3, expectedVersion: 3 });
      checkEqual(next.headVersion, 4n, "the restore consumed no client sequence");
    },
  }),
  defineCase({
    // A compensating delta is one delta however large (RESTORE-003); one over 1 MiB is what a
    // server that keeps large payloads apart (the reference server's stores write it ahead in
    // chunks) must still hand back whole: its chain, read through ListDeltas, and the state.
    id: "restore.large-compensating-delta-reads-back",
    requirements: ["RESTORE-003", "RESTORE-001", "RESTORE-002", "SUB-010"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      const memberBytes = Math.max(1024, Math.min(ctx.limits.maxDeltaBytes - 1024, 256 * 1024));
      const members = Math.ceil((1536 * 1024) / memberBytes);
      const state: Record<string, string> = {};
      for (let i = 0; i < members; i++) {
        state[`m${i}`] = String.fromCharCode(97 + (i % 26)).repeat(memberBytes);
        await append(session, stream.name, [{ [`m${i}`]: state[`m${i}`] }], { clientSequence: i + 1 });
      }
      const checkpoint = await checkpointOf(session, [{ stream: stream.name }]);
      // A second device resumes from before the restore: its catch-up reads the compensating
      // delta back from the server's feed, with its payload (SUB-010).
      const watcher = await ctx.session({ accountId: session.accountId });
      const cursor = await cursorNow(watcher, ctx.signal);
      await append(session, stream.name, [Object.fromEntries(Object.keys(state).map((k) => [k, null]))], { clientSequence: members + 1 });
      const restored = await session.clients.checkpoints.restoreCheckpoint({ name: checkpoint.name });
      checkEqual(restored.streams[0]?.version, BigInt(members + 2), "RestoredStream.version: one compensating delta after the removal");
      const { deltas } = await verifyStreamChain(session, stream.name);
      const compensating = deltas.at(-1)!;
      check(compensating.payload.length > members * memberBytes, `the compensating delta holds the ${members} members it puts back (${compensating.payload.length} bytes)`);
      checkJsonState(await downloadSnapshot(session, stream.name), state, "state after restoring the large checkpoint");
      const feed = openSubscription(watcher, cursor, ctx.signal);
      try {
        for (;;) {
          const { event } = await feed.expectEvent("deltasAppended", { skipOthers: true, timeoutMs: 10_000 });
          const resumed = event.value.deltas.find((d) => d.version === BigInt(members + 2));
          if (resumed === undefined) continue;
          checkBytes(resumed.payload, compensating.payload, "the compensating delta's payload on a resumed feed, against ListDeltas");
          checkBytes(resumed.hash, compensating.hash, "the compensating delta's hash on a resumed feed");
          break;
        }
      } finally {
        feed.close();
      }
    },
  }),
  defineCase({
    id: "restore.appends-whatever-the-conflict-policy",
    requirements: ["RESTORE-007", "RESTORE-001"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const strict = await createStream(ctx, session, { encoding: ENCODING.mergePatch, policy: POLICY.strict });
      await append(session, strict.name, [{ step: 1 }], { clientSequence: 1, expectedVersion: 0 });
      const checkpoint = await checkpointOf(session, [{ stream: strict.name }]);
      await append(session, strict.name, [{ step: 2 }], { clientSequence: 2, expectedVersion: 1 });
      const restored = await session.clients.checkpoints.restoreCheckpoint({ name: checkpoint.name });
      checkEqual(restored.streams[0]?.version, 3n, "a compensating delta on a REQUIRE_EXPECTED_VERSION stream");
      checkJsonState(await downloadSnapshot(session, strict.name), { step: 1 }, "state after restoring a strict stream");
    },
  }),
  defineCase({
    id: "restore.atomic-and-opaque-refused",
    requirements: ["RESTORE-004", "RESTORE-005"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const json = await createStream(ctx, session);
      const opaque = await createStream(ctx, session, { encoding: ENCODING.opaque });
      await append(session, json.name, [{ v: 1 }], { clientSequence: 1 });
      const checkpoint = await checkpointOf(session, [{ stream: json.name }, { stream: opaque.name }]);
      await append(session, json.name, [{ v: 2 }], { clientSequence: 2 });
      await expectError(session.clients.checkpoints.restoreCheckpoint({ name: checkpoint.name }), { code: Status.FAILED_PRECONDITION, reason: "ENCODING_UNSUPPORTED", metadataKeys: ["encoding"] }, "restore of a checkpoint naming an opaque stream");
      checkEqual((await listAllDeltas(session, json.name)).length, 2, "no compensating delta after a failed restore");
    },
  }),
  defineCase({
    id: "handoff.accept-decline-and-double-accept",
    requirements: ["HANDOFF-001", "HANDOFF-005", "HANDOFF-006", "HANDOFF-007", "HANDOFF-002"],
    profile: "core",
    async run(ctx) {
      const [source, laptop, tv] = await twoDevices(ctx);
      const stream = await createStream(ctx, source);
      const checkpoint = await checkpointOf(source, [{ stream: stream.name }]);
      const offer = async () => (await source.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint.name, targetDevice: "", ttlSeconds: 0 })).handoff!;
      const handoff = await offer();
      checkEqual([handoff.state, handoff.checkpoint, handoff.sourceDevice, handoff.targetDevice], [v1.HandoffState.HANDOFF_STATE_OFFERED, checkpoint.name, source.device, ""], "offered handoff");
      check(handoff.createTime !== undefined && handoff.expireTime !== undefined, "create_time and expire_time must be set");
      checkEqual(handoff.expireTime!.getTime() - handoff.createTime!.getTime(), 300_000, "expire_time - create_time for the default TTL");
      await expectError(source.clients.checkpoints.acceptHandoff({ name: handoff.name }), { code: Status.NOT_FOUND, reason: "HANDOFF_NOT_FOUND" }, "the source device accepting its own offer");
      const accepted = await laptop.clients.checkpoints.acceptHandoff({ name: handoff.name });
      checkEqual([accepted.handoff?.state, accepted.handoff?.resolvedBy], [v1.HandoffState.HANDOFF_STATE_ACCEPTED, laptop.device], "accepted handoff");
      checkEqual(accepted.checkpoint?.digest, checkpoint.digest, "AcceptHandoff returns the offered checkpoint");
      await expectError(tv.clients.checkpoints.acceptHandoff({ name: handoff.name }), { code: Status.FAILED_PRECONDITION, reason: "HANDOFF_RESOLVED", metadata: { state: "HANDOFF_STATE_ACCEPTED" } }, "a second device accepting an accepted handoff");
      await expectError(tv.clients.checkpoints.declineHandoff({ name: handoff.name }), { code: Status.FAILED_PRECONDITION, reason: "HANDOFF_RESOLVED" }, "declining an accepted handoff");
      const second = await offer();
      const declined = await tv.clients.checkpoints.declineHandoff({ name: second.name });
      checkEqual([declined.handoff?.state, declined.handoff?.resolvedBy], [v1.HandoffState.HANDOFF_STATE_DECLINED, tv.device], "declined handoff");
      await expectError(laptop.clients.checkpoints.acceptHandoff({ name: second.name }), { code: Status.FAILED_PRECONDITION, reason: "HANDOFF_RESOLVED", metadata: { state: "HANDOFF_STATE_DECLINED" } }, "accepting a declined handoff");
      const third = await offer();
      const racers = await Promise.allSettled([laptop, tv].map((device) => device.clients.checkpoints.acceptHandoff({ name: third.name })));
      checkEqual(racers.filter((r) => r.status === "fulfilled").length, 1, "racing accepts that succeeded");
      await expectError(source.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint.name, targetDevice: "", ttlSeconds: 3601 }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["ttl_seconds"] }, "ttl_seconds above 3600");

    },
  }),
  defineCase({
    id: "handoff.repeated-resolution-is-idempotent",
    requirements: ["HANDOFF-008"],
    profile: "core",
    async run(ctx) {
      const [source, laptop, tv] = await twoDevices(ctx);
      const stream = await createStream(ctx, source);
      const checkpoint = await checkpointOf(source, [{ stream: stream.name }]);
      const offer = async () => (await source.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint.name, targetDevice: "", ttlSeconds: 0 })).handoff!;
      const first = await offer();
      const accepted = await laptop.clients.checkpoints.acceptHandoff({ name: first.name });
      const again = await laptop.clients.checkpoints.acceptHandoff({ name: first.name });
      checkEqual(again.handoff, accepted.handoff, "a repeated accept by the winner returns the handoff unchanged");
      const second = await offer();
      const declined = await tv.clients.checkpoints.declineHandoff({ name: second.name });
      const declinedAgain = await tv.clients.checkpoints.declineHandoff({ name: second.name });
      checkEqual(declinedAgain.handoff, declined.handoff, "a repeated decline returns the handoff unchanged");
      await expectError(tv.clients.checkpoints.acceptHandoff({ name: second.name }), { code: Status.FAILED_PRECONDITION, reason: "HANDOFF_RESOLVED", metadata: { state: "HANDOFF_STATE_DECLINED" } }, "accepting after declining");
    },
  }),
  defineCase({
    id: "handoff.expiry-and-device-binding",
    requirements: ["HANDOFF-009", "HANDOFF-011"],
    profile: "core",
    async run(ctx) {
      const [source, laptop] = await twoDevices(ctx);
      const stream = await createStream(ctx, source);
      const checkpoint = await checkpointOf(source, [{ stream: stream.name }]);
      const unbound = await ctx.session({ accountId: source.accountId, deviceId: null });
      await expectError(unbound.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint.name, targetDevice: "", ttlSeconds: 0 }), { code: Status.FAILED_PRECONDITION, reason: "DEVICE_REQUIRED" }, "OfferHandoff with an unbound token");
      const fleeting = (await source.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint.name, targetDevice: "", ttlSeconds: 1 })).handoff!;
      await expectError(unbound.clients.checkpoints.acceptHandoff({ name: fleeting.name }), { code: Status.FAILED_PRECONDITION, reason: "DEVICE_REQUIRED" }, "AcceptHandoff with an unbound token");
      await new Promise((resolve) => setTimeout(resolve, 1_600));
      const { handoff: expired } = await laptop.clients.checkpoints.getHandoff({ name: fleeting.name });
      checkEqual([expired?.state, expired?.resolvedBy], [v1.HandoffState.HANDOFF_STATE_EXPIRED, ""], "a handoff past its expire_time");
      check(expired?.resolveTime !== undefined, "an expired handoff has resolve_time");
      await expectError(laptop.clients.checkpoints.acceptHandoff({ name: fleeting.name }), { code: Status.FAILED_PRECONDITION, reason: "HANDOFF_RESOLVED", metadata: { state: "HANDOFF_STATE_EXPIRED" } }, "accepting an expired handoff");
    },
  }),
  defineCase({
    id: "handoff.hidden-after-its-checkpoint-is-deleted",
    requirements: ["ISO-012", "SUB-014", "CKPT-022", "HANDOFF-010"],
    profile: "identity",
    async run(ctx) {
      const { owner, other } = await ownerAndOtherPlatform(ctx);
      const laptop = await ctx.session({ accountId: owner.accountId });
      const stream = await createStream(ctx, owner);
      const checkpoint = await checkpointOf(owner, [{ stream: stream.name }]);
      const hidden = { code: Status.NOT_FOUND, reason: "HANDOFF_NOT_FOUND" } as const;
      const subs = [openSubscription(laptop, "", ctx.signal), openSubscription(other, "", ctx.signal)] as const;
      try {
        for (const sub of subs) await sub.expectEvent("ready");
        const { handoff } = await owner.clients.checkpoints.offerHandoff({ parent: owner.subject, checkpoint: checkpoint.name, targetDevice: "", ttlSeconds: 60 });
        await expectError(other.clients.checkpoints.getHandoff({ name: handoff!.name }), hidden, "GetHandoff by a platform that may not read the checkpoint");
        // Deleting the checkpoint expires the handoff; it must stay exactly as hidden.
        await owner.clients.checkpoints.deleteCheckpoint({ name: checkpoint.name });
        const resolved = await subs[0].expectEvent("handoffResolved", { skipOthers: true });
        checkEqual(resolved.event.value.handoff?.state, v1.HandoffState.HANDOFF_STATE_EXPIRED, "HandoffResolved on a device of the owning platform");
        await expectError(other.clients.checkpoints.getHandoff({ name: handoff!.name }), hidden, "GetHandoff by that platform after the checkpoint was deleted");
        // A stream of its own, created after the deletion: everything before it in the feed
        // has been decided, so a leaked HandoffResolved would arrive first.
        const own = await createStream(ctx, other);
        const created = await subs[1].expectEvent("streamCreated");
        checkEqual(created.event.value.stream?.uid, own.uid, "the first event the other platform sees is its own stream");
      } finally {
        for (const sub of subs) sub.close();
      }
    },
  }),
  defineCase({
    id: "handoff.offered-to-other-devices-only",
    requirements: ["HANDOFF-004", "HANDOFF-010", "HANDOFF-003"],
    profile: "core",
    async run(ctx) {
      const [source, laptop, tv] = await twoDevices(ctx);
      const stream = await createStream(ctx, source);
      const checkpoint = await checkpointOf(source, [{ stream: stream.name }]);
      const subs = [openSubscription(source, "", ctx.signal), openSubscription(laptop, "", ctx.signal), openSubscription(tv, "", ctx.signal)];
      try {
        for (const sub of subs) await sub.expectEvent("ready");
        const { handoff } = await source.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint.name, targetDevice: laptop.device, ttlSeconds: 60 });
        const offered = await subs[1]!.expectEvent("handoffOffered");
        checkEqual(offered.event.value.handoff?.name, handoff?.name, "HandoffOffered.handoff on the target device");
        checkEqual(offered.event.value.checkpoint?.digest, checkpoint.digest, "HandoffOffered.checkpoint");
        await expectError(tv.clients.checkpoints.acceptHandoff({ name: handoff!.name }), { code: Status.NOT_FOUND, reason: "HANDOFF_NOT_FOUND" }, "a device other than target_device accepting");
        await laptop.clients.checkpoints.acceptHandoff({ name: handoff!.name });
        const resolved = await subs[0]!.expectEvent("handoffResolved");
        checkEqual(resolved.event.value.handoff?.state, v1.HandoffState.HANDOFF_STATE_ACCEPTED, "HandoffResolved on the source device");
        await subs[2]!.expectQuiet(300);
        await expectError(source.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint.name, targetDevice: `${source.subject}/devices/never-registered`, ttlSeconds: 60 }), { code: Status.NOT_FOUND, reason: "DEVICE_NOT_FOUND" }, "offer to an unknown target device");
      } finally {
        for (const sub of subs) sub.close();
      }
    },
  }),
];
