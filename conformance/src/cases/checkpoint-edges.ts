import { v1 } from "../harness/clients.js";
import { defineCase } from "../harness/define-case.js";
import { checkBytes, checkEqual, expectError, fail, Status } from "../harness/expect.js";
import { checkpointDigest } from "../harness/hashing.js";
import { linkAccount } from "../harness/linking.js";
import { append, createStream } from "../harness/streams.js";

/** Checkpoints at their edges: no resume payload, a stream recreated under its id, pages with hidden checkpoints. */
export const CHECKPOINT_EDGE_CASES = [
  defineCase({
    id: "checkpoint-edges.without-resume-payload",
    requirements: ["CKPT-003", "CKPT-020"],
    profile: "core",
    async run(ctx) {
      // A checkpoint created without a resume payload has an empty one: nothing is filled in.
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      await append(session, stream.name, [{ a: 1 }], { clientSequence: 1 });
      const { checkpoint } = await session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: undefined });
      const { checkpoint: read } = await session.clients.checkpoints.getCheckpoint({ name: checkpoint!.name });
      for (const [what, c] of [["CreateCheckpoint", checkpoint], ["GetCheckpoint", read]] as const) {
        const r = c?.resume;
        checkEqual([r?.activityType ?? "", r?.resource ?? "", r?.position ?? "", r?.fallbackUrl ?? "", Object.keys(r?.attributes ?? {}).length], ["", "", "", "", 0], `${what}: resume payload of a checkpoint created without one`);
        checkBytes(c?.digest, checkpointDigest({ entries: c?.entries ?? [], resume: undefined }), `${what}: digest over the empty resume payload`);
      }
    },
  }),
  defineCase({
    id: "checkpoint-edges.restore-after-stream-recreated",
    requirements: ["RESTORE-005", "RESTORE-004"],
    profile: "core",
    async run(ctx) {
      // The checkpoint captured a stream by uid; a new stream under the same id is another
      // stream, so the restore finds its stream deleted and appends nothing anywhere.
      const session = await ctx.session();
      const streamId = ctx.uniqueId("again");
      const kept = await createStream(ctx, session);
      const first = await createStream(ctx, session, { streamId });
      await append(session, first.name, [{ v: 1 }], { clientSequence: 1 });
      await append(session, kept.name, [{ k: 1 }], { clientSequence: 1 });
      const { checkpoint } = await session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: kept.name }, { stream: first.name }], resume: undefined });
      await append(session, kept.name, [{ k: 2 }], { clientSequence: 2 });
      await session.clients.streams.deleteStream({ name: first.name });
      const second = await createStream(ctx, session, { streamId });
      await append(session, second.name, [{ v: 2 }], { clientSequence: 1 });
      await expectError(session.clients.checkpoints.restoreCheckpoint({ name: checkpoint!.name }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "restoring a checkpoint whose stream was deleted and another created under its id");
      checkEqual((await session.clients.streams.getStream({ name: second.name })).stream?.headVersion, 1n, "the new stream under the id after the refused restore");
      checkEqual((await session.clients.streams.getStream({ name: kept.name })).stream?.headVersion, 2n, "the checkpoint's other stream after the refused restore");
    },
  }),
  defineCase({
    id: "checkpoint-edges.handoff-to-own-device-refused",
    requirements: ["HANDOFF-003", "ERR-004"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      const { checkpoint } = await session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: undefined });
      await expectError(session.clients.checkpoints.offerHandoff({ parent: session.subject, checkpoint: checkpoint!.name, targetDevice: session.device, ttlSeconds: 0 }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["target_device"] }, "a handoff offered to the offering device");
    },
  }),
  defineCase({
    id: "checkpoint-edges.list-page-size-with-hidden-checkpoints",
    requirements: ["DELTA-021", "DELTA-022", "CKPT-021"],
    profile: "identity",
    async run(ctx) {
      // The grantee may read one stream type; checkpoints of the other type are hidden from it
      // and lie between visible ones. Its pages still hold at most page_size checkpoints, and
      // following the tokens yields each visible one once, newest first.
      const owner = await ctx.session();
      const grantee = await linkAccount(ctx, owner, ctx.platforms.b, "pages");
      await owner.clients.consent.createGrant({ parent: owner.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${grantee.platform.id}`, streamType: "org.example.visible", access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } });
      const visible = await createStream(ctx, owner, { type: "org.example.visible" });
      const hidden = await createStream(ctx, owner, { type: "org.example.hidden" });
      const order = ["v", "v", "h", "v", "h", "h", "v", "v", "h", "v"];
      const names: string[] = [];
      for (const kind of order) {
        const { checkpoint } = await owner.clients.checkpoints.createCheckpoint({ parent: owner.subject, checkpointId: "", streams: [{ stream: (kind === "v" ? visible : hidden).name }], resume: undefined });
        if (kind === "v") names.push(checkpoint!.name);
        // create_time orders the list; let each checkpoint have its own.
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const seen: string[] = [];
      let pageToken = "";
      for (let page = 0; page < 20; page++) {
        const response = await grantee.clients.checkpoints.listCheckpoints({ parent: grantee.subject, pageSize: 2, pageToken });
        if (response.checkpoints.length > 2) fail(`a page of ListCheckpoints with page_size 2 held ${response.checkpoints.length} checkpoints`);
        seen.push(...response.checkpoints.map((c) => c.name));
        pageToken = response.nextPageToken;
        if (pageToken === "") break;
      }
      checkEqual(seen, [...names].reverse(), "checkpoints the grantee sees over all pages, newest first");
    },
  }),
];
