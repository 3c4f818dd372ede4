import { v1 } from "../harness/clients.js";
import { TOKEN_EXCHANGE } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, expectError, Status } from "../harness/expect.js";
import { append, createStream, emptyStream, ENCODING, POLICY } from "../harness/streams.js";

const MINTED_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

function idOf(name: string | undefined, collection: string): string {
  const match = new RegExp(`^subjects/([^/]+)${collection === "subjects" ? "" : `/${collection}/([^/]+)`}$`).exec(name ?? "");
  check(match !== null, `"${name}" must be a canonical ${collection} name`);
  const id = match[match.length - 1]!;
  check(MINTED_ID.test(id) && !id.endsWith("-"), `minted id "${id}" must be 1-63 of [a-z0-9-], not ending in -`);
  return id;
}

/** Resource names, ids, output-only fields and per-subject limits. */
export const RESOURCE_CASES = [
  defineCase({
    id: "names.minted-ids-and-canonical-names",
    requirements: ["GEN-033", "GEN-034", "GEN-041", "STREAM-005"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const laptop = await ctx.session({ accountId: session.accountId });
      idOf(session.subject, "subjects");
      const { stream } = await session.clients.streams.createStream({
        parent: session.subject,
        streamId: "",
        stream: { ...emptyStream(), name: "subjects/other/streams/forged", uid: "00000000-0000-4000-8000-000000000000", type: "org.example.minted", encoding: ENCODING.mergePatch, conflictPolicy: POLICY.blind, headVersion: 42n, horizonVersion: 7n, ownerPlatform: "platforms/someone-else", createTime: new Date(0) },
      });
      idOf(stream?.name, "streams");
      check(stream?.name.startsWith(`${session.subject}/streams/`), "the created stream lives in the caller's subject");
      checkEqual([stream?.headVersion, stream?.horizonVersion, stream?.ownerPlatform], [0n, 0n, `platforms/${session.platform.id}`], "output-only fields sent by the client are ignored");
      check(stream?.uid !== "00000000-0000-4000-8000-000000000000", "a client-sent uid must be ignored");
      check((stream?.createTime?.getTime() ?? 0) > 0, "a client-sent create_time must be ignored");
      const uids = new Set<string>([stream!.uid]);
      for (let i = 0; i < 5; i++) uids.add((await createStream(ctx, session)).uid);
      checkEqual(uids.size, 6, "distinct streams have distinct uids");
      await append(session, stream!.name, [{ a: 1 }], { clientSequence: 1 });
      const { checkpoint } = await session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: stream!.name }], resume: undefined });
      idOf(checkpoint?.name, "checkpoints");
      checkEqual(checkpoint?.entries[0]?.stream, stream!.name, "checkpoint entries name the stream canonically");
      const { handoff } = await session.clients.checkpoints.offerHandoff({ parent: session.subject, checkpoint: checkpoint!.name, targetDevice: laptop.device, ttlSeconds: 0 });
      idOf(handoff?.name, "handoffs");
      checkEqual([handoff?.sourceDevice, handoff?.targetDevice], [session.device, laptop.device], "handoff device names");
    },
  }),
  defineCase({
    id: "names.malformed-resource-names-refused",
    requirements: ["GEN-030", "GEN-032", "TOKEN-016", "VER-012", "ERR-004"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const bad = [`${session.subject}/streamz/a`, `${session.subject}/streams/`, `${session.subject}/streams/a/`, `/${session.subject}/streams/a`, `${session.subject}/streams/UPPER`, "streams/a", ""];
      for (const name of bad) {
        await expectError(session.clients.streams.getStream({ name }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["name"] }, `GetStream name "${name}"`);
      }
      await expectError(session.clients.streams.listStreams({ parent: `${session.subject}/`, pageSize: 0, pageToken: "", type: "" }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["parent"] }, "ListStreams parent with a trailing slash");
      const assertion = await ctx.mintAssertion({ platform: ctx.platforms.a, accountId: ctx.uniqueId("acct") });
      const exchange = (deviceId: string, deviceDisplayName = "") => ctx.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken: assertion, subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "", deviceId, deviceDisplayName });
      for (const deviceId of ["-leading-dash", "Upper", "has space", "x".repeat(64)]) {
        await expectError(exchange(deviceId), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["device_id"] }, `device id "${deviceId.slice(0, 20)}"`);
      }
      await expectError(exchange("ok-device", "n".repeat(101)), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["device_display_name"] }, "device_display_name of 101 characters");
      await expectError(session.clients.streams.createStream({ parent: session.subject, streamId: "unspecified", stream: { ...emptyStream(), type: "org.example.x", encoding: ENCODING.opaque, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_UNSPECIFIED } }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["stream.conflict_policy"] }, "CreateStream with an unspecified conflict policy");
    },
  }),
  defineCase({
    id: "stream.fields-immutable-and-checkpoints-outlive-streams",
    requirements: ["STREAM-013", "STREAM-024", "STREAM-010"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const created = await createStream(ctx, session, { encoding: ENCODING.mergePatch, policy: POLICY.strict });
      const immutable = (s: typeof created | undefined) => [s?.type, s?.encoding, s?.conflictPolicy, s?.uid, s?.ownerPlatform, s?.createTime?.getTime()];
      const receipts = await append(session, created.name, [{ a: 1 }, { b: 2 }], { clientSequence: 1, expectedVersion: 0 });
      const { stream: afterAppend } = await session.clients.streams.getStream({ name: created.name });
      checkEqual([afterAppend?.headVersion, Buffer.from(afterAppend?.headHash ?? []).toString("hex")], [2n, Buffer.from(receipts.headHash).toString("hex")], "GetStream reflects the acknowledged append");
      await session.clients.streams.compactStream({ stream: created.name, horizonVersion: 1n });
      const { stream: afterCompact } = await session.clients.streams.getStream({ name: created.name });
      checkEqual(afterCompact?.horizonVersion, 1n, "GetStream reflects the acknowledged compaction");
      checkEqual(immutable(afterCompact), immutable(created), "immutable stream fields after appends and compaction");
      const { checkpoint } = await session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: created.name }], resume: undefined });
      await session.clients.streams.deleteStream({ name: created.name });
      const { checkpoint: after } = await session.clients.checkpoints.getCheckpoint({ name: checkpoint!.name });
      checkEqual(after, checkpoint, "a checkpoint naming a deleted stream stays readable and unchanged");
      await expectError(session.clients.checkpoints.restoreCheckpoint({ name: checkpoint!.name }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "restoring a checkpoint whose stream was deleted");
    },
  }),
  defineCase({
    id: "stream.limit-per-subject",
    requirements: ["STREAM-030"],
    profile: "core",
    timeoutMs: 90_000,
    async run(ctx) {
      const limit = ctx.limits.maxStreamsPerSubject;
      if (limit > 5000) ctx.skip(`max_streams_per_subject is ${limit}; the suite creates at most 5000 streams`);
      const session = await ctx.session();
      const first = await createStream(ctx, session);
      await session.clients.streams.deleteStream({ name: first.name });
      for (let made = 0; made < limit; made += 25) {
        await Promise.all(Array.from({ length: Math.min(25, limit - made) }, (_, i) => session.clients.streams.createStream({ parent: session.subject, streamId: `bulk-${made + i}`, stream: { ...emptyStream(), type: "org.example.bulk", encoding: ENCODING.opaque, conflictPolicy: POLICY.blind } })));
      }
      await expectError(session.clients.streams.createStream({ parent: session.subject, streamId: "one-too-many", stream: { ...emptyStream(), type: "org.example.bulk", encoding: ENCODING.opaque, conflictPolicy: POLICY.blind } }), { code: Status.RESOURCE_EXHAUSTED, reason: "STREAM_LIMIT_REACHED", metadata: { limit: String(limit) } }, `stream number ${limit + 1} (a deleted one does not count)`);
    },
  }),
  defineCase({
    id: "paging.page-size-defaults-and-caps",
    requirements: ["DELTA-020", "DELTA-021"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const max = ctx.limits.maxPageSize;
      const total = Math.max(120, Math.min(max + 10, 1200));
      const batch = Math.min(ctx.limits.maxBatchDeltas, 100);
      let seq = 1;
      for (let written = 0; written < total; written += batch) await append(session, stream.name, Array.from({ length: Math.min(batch, total - written) }, () => Buffer.from([1])), { clientSequence: seq++ });
      const byDefault = await session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 0, pageToken: "" });
      checkEqual(byDefault.deltas.length, Math.min(100, max), "ListDeltas page_size 0 selects the default of 100");
      if (max < total) {
        const capped = await session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: max + 500, pageToken: "" });
        checkEqual(capped.deltas.length, max, "a page_size above max_page_size is lowered to it");
      } else {
        ctx.note(`max_page_size ${max} is larger than the ${total} deltas written; the cap was not exercised`);
      }
      await expectError(session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: -5, pageToken: "" }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["page_size"] }, "negative page_size");
    },
  }),
];
