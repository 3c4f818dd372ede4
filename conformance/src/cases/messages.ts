import type { continuity } from "@continuity/sdk/gen";
import { Metadata } from "nice-grpc";
import { v1 } from "../harness/clients.js";
import { TOKEN_EXCHANGE, type CaseContext, type Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, expectError, fail, Status, type ExpectedError } from "../harness/expect.js";
import { snapshotHash } from "../harness/hashing.js";
import { linkAccount } from "../harness/linking.js";
import { append, createStream, ENCODING, POLICY } from "../harness/streams.js";

// ERR-007 (SHOULD): a status message is a short English sentence that helps a developer. A
// client never branches on it, but a server that answers a refusal with an empty message, a
// single word or its reason again leaves the developer with a bare code. Every refusal below
// must come with a message that says something, besides the code, reason and metadata that
// expectError checks as always.

type UploadMessage = continuity.v1.UploadSnapshotRequest;

/** Whether a status message says something: two words with letters, and more than the reason. */
function saysSomething(message: string, reason: string): boolean {
  const text = message.trim();
  return /[A-Za-z]{2,}\W+[A-Za-z]{2,}/.test(text) && text !== reason;
}

/** Checks the error as expectError does, then that its status message says something. */
async function explained(call: Promise<unknown> | (() => Promise<unknown>), expected: ExpectedError, what: string): Promise<void> {
  const error = await expectError(call, expected, what);
  check(saysSomething(error.message, error.info.reason), `${what}: ${error.info.reason} needs a status message that helps a developer (ERR-007), got ${JSON.stringify(error.message)}`);
}

/** A refusal a case provokes, and what it must be. */
interface Refusal {
  readonly what: string;
  readonly call: () => Promise<unknown>;
  readonly expected: ExpectedError;
}

/** Provokes every refusal in turn, then names all whose messages say nothing at once. */
async function checkMessages(refusals: readonly Refusal[]): Promise<void> {
  const bad: string[] = [];
  for (const refusal of refusals) {
    const error = await expectError(refusal.call, refusal.expected, refusal.what);
    if (!saysSomething(error.message, error.info.reason)) bad.push(`${refusal.what}: ${JSON.stringify(error.message)}`);
  }
  if (bad.length > 0) fail(`status messages that say nothing to a developer (ERR-007):\n${bad.join("\n")}`);
}

function upload(session: Session, messages: readonly UploadMessage[]): Promise<unknown> {
  return session.clients.streams.uploadSnapshot((async function* () {
    yield* messages;
  })());
}

const header = (value: continuity.v1.SnapshotHeader): UploadMessage => ({ part: { $case: "header", value } });
const data = (value: Buffer): UploadMessage => ({ part: { $case: "data", value } });

function grantRequest(owner: Session, granteePlatform: string, grantorPlatform = "") {
  return { parent: owner.subject, grant: { name: "", grantorPlatform, granteePlatform, streamType: "*", access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } };
}

async function identityRefusals(ctx: CaseContext): Promise<Refusal[]> {
  const owner = await ctx.session();
  const grantee = await linkAccount(ctx, owner, ctx.platforms.b, "grantee");
  const third = await linkAccount(ctx, owner, ctx.platforms.c, "third");
  const other = await ctx.session();
  // c may only read (fixtures/platform-keys.ts): b grants to c, and a is neither party.
  const { grant } = await grantee.clients.consent.createGrant(grantRequest(grantee, `platforms/${third.platform.id}`));
  return [
    { what: "RevokeGrant of an unknown grant", call: () => owner.clients.consent.revokeGrant({ name: `${owner.subject}/grants/no-such-grant` }), expected: { code: Status.NOT_FOUND, reason: "GRANT_NOT_FOUND" } },
    { what: "RevokeGrant by a platform neither grantor nor grantee", call: () => owner.clients.consent.revokeGrant({ name: grant!.name }), expected: { code: Status.PERMISSION_DENIED, reason: "NOT_GRANTOR" } },
    { what: "CreateGrant naming another grantor", call: () => owner.clients.consent.createGrant(grantRequest(owner, `platforms/${third.platform.id}`, `platforms/${grantee.platform.id}`)), expected: { code: Status.PERMISSION_DENIED, reason: "NOT_GRANTOR" } },
    { what: "RedeemLinkCode of an unknown code", call: async () => ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.b, accountId: ctx.uniqueId("guess") }), code: "ABCDEFGHJK" }), expected: { code: Status.NOT_FOUND, reason: "LINK_CODE_INVALID" } },
    { what: "RedeemLinkCode by an account linked to another subject", call: async () => {
      const { code } = await other.clients.subjects.createLinkCode({ parent: other.subject });
      return ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: grantee.platform, accountId: grantee.accountId }), code });
    }, expected: { code: Status.FAILED_PRECONDITION, reason: "ACCOUNT_LINKED_ELSEWHERE" } },
    { what: "RedeemLinkCode after 10 failed redemptions", call: async () => {
      // LINK-019: the account's eleventh redemption within the window is refused.
      const guesser = await ctx.mintAssertion({ platform: ctx.platforms.a, accountId: ctx.uniqueId("guesser") });
      for (let i = 0; i < 10; i++) await ctx.clients().subjects.redeemLinkCode({ subjectToken: guesser, code: "ABCDEFGHJK" }).catch(() => undefined);
      return ctx.clients().subjects.redeemLinkCode({ subjectToken: guesser, code: "ABCDEFGHJK" });
    }, expected: { code: Status.RESOURCE_EXHAUSTED, reason: "LINK_CODE_ATTEMPTS_EXCEEDED" } },
    { what: "DeleteAccountLink of an unknown link", call: () => owner.clients.subjects.deleteAccountLink({ name: `${owner.subject}/accountLinks/no-such-link` }), expected: { code: Status.NOT_FOUND, reason: "ACCOUNT_LINK_NOT_FOUND" } },
    { what: "DeleteAccountLink of the last link", call: async () => {
      const { accountLinks } = await other.clients.subjects.listAccountLinks({ parent: other.subject, pageSize: 0, pageToken: "" });
      return other.clients.subjects.deleteAccountLink({ name: accountLinks[0]!.name });
    }, expected: { code: Status.FAILED_PRECONDITION, reason: "LAST_ACCOUNT_LINK" } },
    { what: "ExchangeToken asking for a scope the platform may not have", call: async () => ctx.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.c, accountId: ctx.uniqueId("reader") }), subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "state.write", deviceId: "", deviceDisplayName: "" }), expected: { code: Status.PERMISSION_DENIED, reason: "SCOPE_NOT_ALLOWED" } },
    { what: "ExchangeToken for a revoked device", call: async () => {
      const device = await ctx.session({ accountId: other.accountId });
      await other.clients.devices.revokeDevice({ name: device.device });
      return ctx.session({ accountId: other.accountId, deviceId: device.deviceId });
    }, expected: { code: Status.PERMISSION_DENIED, reason: "DEVICE_REVOKED" } },
    { what: "RevokeDevice of an unknown device", call: () => owner.clients.devices.revokeDevice({ name: `${owner.subject}/devices/no-such-device` }), expected: { code: Status.NOT_FOUND, reason: "DEVICE_NOT_FOUND" } },
  ];
}

async function checkpointRefusals(ctx: CaseContext): Promise<Refusal[]> {
  const source = await ctx.session();
  const other = await ctx.session({ accountId: source.accountId });
  const stream = await createStream(ctx, source, { encoding: ENCODING.opaque });
  await append(source, stream.name, [Buffer.from("x")], { clientSequence: 1 });
  const id = ctx.uniqueId("ckpt");
  const create = (checkpointId: string, extra: object = {}) => source.clients.checkpoints.createCheckpoint({ parent: source.subject, checkpointId, streams: [{ stream: stream.name }], resume: undefined, ...extra });
  const { checkpoint } = await create(id);
  const offer = async () => (await source.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint!.name, targetDevice: "", ttlSeconds: 0 })).handoff!;
  const accepted = await offer();
  await other.clients.checkpoints.acceptHandoff({ name: accepted.name });
  const tooLong = "x".repeat(ctx.limits.maxResumePayloadBytes + 1);
  return [
    { what: "GetCheckpoint of an unknown checkpoint", call: () => source.clients.checkpoints.getCheckpoint({ name: `${source.subject}/checkpoints/no-such-checkpoint` }), expected: { code: Status.NOT_FOUND, reason: "CHECKPOINT_NOT_FOUND" } },
    { what: "CreateCheckpoint with an id in use", call: () => create(id), expected: { code: Status.ALREADY_EXISTS, reason: "CHECKPOINT_ALREADY_EXISTS" } },
    { what: "CreateCheckpoint with a resume payload over the limit", call: () => create("", { resume: { activityType: "org.example.x", resource: "", position: tooLong, fallbackUrl: "", attributes: {} } }), expected: { code: Status.RESOURCE_EXHAUSTED, reason: "RESUME_PAYLOAD_TOO_LARGE" } },
    { what: "RestoreCheckpoint of an opaque stream", call: () => source.clients.checkpoints.restoreCheckpoint({ name: checkpoint!.name }), expected: { code: Status.FAILED_PRECONDITION, reason: "ENCODING_UNSUPPORTED" } },
    { what: "GetHandoff of an unknown handoff", call: () => source.clients.checkpoints.getHandoff({ name: `${source.subject}/handoffs/no-such-handoff` }), expected: { code: Status.NOT_FOUND, reason: "HANDOFF_NOT_FOUND" } },
    { what: "AcceptHandoff of an accepted handoff", call: () => other.clients.checkpoints.acceptHandoff({ name: accepted.name }).then(() => other.clients.checkpoints.declineHandoff({ name: accepted.name })), expected: { code: Status.FAILED_PRECONDITION, reason: "HANDOFF_RESOLVED" } },
    { what: "OfferHandoff to a device the subject does not have", call: () => source.clients.checkpoints.offerHandoff({ parent: source.subject, checkpoint: checkpoint!.name, targetDevice: `${source.subject}/devices/no-such-device`, ttlSeconds: 0 }), expected: { code: Status.NOT_FOUND, reason: "DEVICE_NOT_FOUND" } },
  ];
}

/** Every refusal says in words what went wrong (ERR-007). */
export const MESSAGE_CASES = [
  defineCase({
    id: "messages.core-refusals-explain-themselves",
    requirements: ["ERR-007"],
    profile: "core",
    timeoutMs: 40_000,
    async run(ctx) {
      const session = await ctx.session();
      const streams = session.clients.streams;
      // Credentials, scope, version and isolation.
      const name = `${session.subject}/streams/${ctx.uniqueId("missing")}`;
      await explained(ctx.clients().streams.getStream({ name }), { code: Status.UNAUTHENTICATED, reason: "TOKEN_MISSING" }, "a call without a token");
      await explained(ctx.clients("not.a.token").streams.getStream({ name }), { code: Status.UNAUTHENTICATED, reason: "TOKEN_INVALID" }, "a call with a malformed token");
      const exchange = async (subjectToken: string) => ctx.clients().tokens.exchangeToken({ grantType: "urn:ietf:params:oauth:grant-type:token-exchange", subjectToken, subjectTokenType: "urn:ietf:params:oauth:token-type:jwt", scope: "", deviceId: "", deviceDisplayName: "" });
      await explained(exchange(await ctx.mintAssertion({ platform: ctx.platforms.a, accountId: session.accountId, audience: "someone-else" })), { code: Status.UNAUTHENTICATED, reason: "ASSERTION_INVALID" }, "an exchange with an assertion for another audience");
      await explained(exchange(await ctx.mintAssertion({ platform: ctx.platforms.a, accountId: session.accountId, issuer: "no-such-platform" })), { code: Status.UNAUTHENTICATED, reason: "PLATFORM_UNKNOWN" }, "an exchange with an assertion of an unknown platform");
      const readOnly = await ctx.session({ accountId: session.accountId, deviceId: session.deviceId, scope: "state.read" });
      await explained(readOnly.clients.streams.createStream({ parent: session.subject, streamId: "", stream: { ...v1.Stream.fromPartial({}), type: "org.example.x", encoding: ENCODING.opaque, conflictPolicy: POLICY.blind } }), { code: Status.PERMISSION_DENIED, reason: "SCOPE_INSUFFICIENT" }, "CreateStream without state.write");
      const versioned = new Metadata();
      versioned.set("authorization", `Bearer ${session.token}`);
      versioned.set("continuity-protocol-version", "999");
      await explained(streams.getStream({ name }, { metadata: versioned }), { code: Status.FAILED_PRECONDITION, reason: "PROTOCOL_VERSION_UNSUPPORTED" }, "protocol version 999");
      await explained(streams.getStream({ name: `subjects/${ctx.uniqueId("other")}/streams/a` }), { code: Status.NOT_FOUND, reason: "SUBJECT_NOT_FOUND" }, "another subject's stream");
      await explained(streams.getStream({ name }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "a stream that does not exist");

      // Appends.
      const strict = await createStream(ctx, session, { encoding: ENCODING.mergePatch, policy: POLICY.strict });
      await explained(streams.createStream({ parent: session.subject, streamId: strict.name.split("/").pop()!, stream: { ...v1.Stream.fromPartial({}), type: "org.example.x", encoding: ENCODING.opaque, conflictPolicy: POLICY.blind } }), { code: Status.ALREADY_EXISTS, reason: "STREAM_ALREADY_EXISTS" }, "CreateStream with an id in use");
      await explained(append(session, strict.name, [{ a: 1 }], { clientSequence: 1 }), { code: Status.FAILED_PRECONDITION, reason: "EXPECTED_VERSION_REQUIRED" }, "a blind append to a strict stream");
      await append(session, strict.name, [{ a: 1 }], { clientSequence: 1, expectedVersion: 0 });
      await explained(append(session, strict.name, [{ a: 2 }], { clientSequence: 2, expectedVersion: 0 }), { code: Status.ABORTED, reason: "VERSION_CONFLICT" }, "an append with a stale expected_version");
      await explained(append(session, strict.name, [{ a: 3 }], { clientSequence: 1, expectedVersion: 1 }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_REUSED" }, "a client sequence reused for another request");
      await explained(append(session, strict.name, [{ a: 3 }], { clientSequence: 5, expectedVersion: 1 }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_GAP" }, "a client sequence that skips numbers");
      await explained(append(session, strict.name, [Buffer.from("{not json")], { clientSequence: 2, expectedVersion: 1 }), { code: Status.INVALID_ARGUMENT, reason: "MALFORMED_PAYLOAD" }, "a payload that is not JSON");
      const patch = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      await explained(append(session, patch.name, [[{ op: "remove", path: "/absent" }]], { clientSequence: 1 }), { code: Status.FAILED_PRECONDITION, reason: "PATCH_NOT_APPLICABLE" }, "a patch removing a member that does not exist");
      const doubling = [{ op: "add", path: "/a", value: [0] }, ...Array.from({ length: 40 }, () => ({ op: "copy", from: "/a", path: "/a/-" }))];
      await explained(append(session, patch.name, [doubling], { clientSequence: 1 }), { code: Status.RESOURCE_EXHAUSTED, reason: ["DELTA_TOO_LARGE", "SNAPSHOT_TOO_LARGE"] }, "a patch of 40 self-doubling copies");
      const opaque = await createStream(ctx, session, { encoding: ENCODING.opaque });
      await explained(append(session, opaque.name, Array.from({ length: ctx.limits.maxBatchDeltas + 1 }, () => Buffer.from("x")), { clientSequence: 1 }), { code: Status.RESOURCE_EXHAUSTED, reason: "BATCH_TOO_LARGE" }, "a batch of more than max_batch_deltas deltas");
      await explained(append(session, opaque.name, [Buffer.alloc(ctx.limits.maxDeltaBytes + 1)], { clientSequence: 1 }), { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE" }, "a delta above max_delta_bytes");
      const perDelta = ctx.limits.maxDeltaBytes;
      const overBatch = Math.floor(ctx.limits.maxBatchBytes / perDelta) + 1;
      if (overBatch <= ctx.limits.maxBatchDeltas) {
        await explained(append(session, opaque.name, Array.from({ length: overBatch }, () => Buffer.alloc(perDelta)), { clientSequence: 1 }), { code: Status.RESOURCE_EXHAUSTED, reason: "BATCH_TOO_LARGE" }, "a batch above max_batch_bytes");
      }
      const unbound = await ctx.session({ accountId: session.accountId, deviceId: null });
      await explained(append(unbound, opaque.name, [Buffer.from("x")], { clientSequence: 1 }), { code: Status.FAILED_PRECONDITION, reason: "DEVICE_REQUIRED" }, "an append with a token bound to no device");

      // Reads, paging and compaction.
      const written = await append(session, opaque.name, [Buffer.from("a"), Buffer.from("b"), Buffer.from("c")], { clientSequence: 1 });
      await explained(streams.listDeltas({ stream: opaque.name, afterVersion: 9n, pageSize: 0, pageToken: "" }), { code: Status.OUT_OF_RANGE, reason: "VERSION_AHEAD_OF_HEAD" }, "ListDeltas after a version beyond the head");
      await explained(streams.listDeltas({ stream: opaque.name, afterVersion: 0n, pageSize: 0, pageToken: "garbage" }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_PAGE_TOKEN" }, "ListDeltas with a page token the server never minted");
      await explained(streams.compactStream({ stream: opaque.name, horizonVersion: 2n }), { code: Status.NOT_FOUND, reason: "SNAPSHOT_NOT_FOUND" }, "compacting an opaque stream without a snapshot there");
      const state = Buffer.from("state at two");
      const listed = await streams.listDeltas({ stream: opaque.name, afterVersion: 0n, pageSize: 0, pageToken: "" });
      const hashAt2 = listed.deltas[1]!.hash;
      const good: continuity.v1.SnapshotHeader = { stream: opaque.name, streamUid: opaque.uid, version: 2n, headHash: Buffer.from(hashAt2), encoding: ENCODING.opaque, sizeBytes: BigInt(state.length), snapshotHash: Buffer.from(snapshotHash({ streamUid: opaque.uid, version: 2n, headHash: hashAt2, encoding: ENCODING.opaque, state })) };
      await explained(upload(session, [header({ ...good, sizeBytes: ctx.limits.maxSnapshotBytes + 1n })]), { code: Status.RESOURCE_EXHAUSTED, reason: "SNAPSHOT_TOO_LARGE" }, "an upload above max_snapshot_bytes");
      await explained(upload(session, [header(good), data(Buffer.concat([state, state]))]), { code: Status.INVALID_ARGUMENT, reason: "SNAPSHOT_MISMATCH" }, "an upload of more bytes than size_bytes");
      await explained(upload(session, [header(good), data(state.subarray(1))]), { code: Status.INVALID_ARGUMENT, reason: "SNAPSHOT_MISMATCH" }, "an upload of fewer bytes than size_bytes");
      await explained(upload(session, [header({ ...good, snapshotHash: Buffer.alloc(32) }), data(state)]), { code: Status.INVALID_ARGUMENT, reason: "SNAPSHOT_MISMATCH" }, "an upload whose bytes do not match snapshot_hash");
      await explained(upload(session, [header({ ...good, version: 9n }), data(state)]), { code: Status.OUT_OF_RANGE, reason: "VERSION_AHEAD_OF_HEAD" }, "an upload beyond the head");
      await explained(upload(session, [header({ ...good, stream: strict.name, streamUid: strict.uid, version: 0n, encoding: ENCODING.mergePatch })]), { code: Status.FAILED_PRECONDITION, reason: "ENCODING_UNSUPPORTED" }, "an upload to a JSON stream");
      await upload(session, [header(good), data(state)]);
      await streams.compactStream({ stream: opaque.name, horizonVersion: 2n });
      await explained(streams.listDeltas({ stream: opaque.name, afterVersion: 1n, pageSize: 0, pageToken: "" }), { code: Status.FAILED_PRECONDITION, reason: "HISTORY_COMPACTED" }, "ListDeltas below the horizon");
      await explained(async () => {
        for await (const message of streams.getSnapshot({ stream: opaque.name, version: 1n })) void message;
      }, { code: Status.NOT_FOUND, reason: "SNAPSHOT_NOT_FOUND" }, "GetSnapshot of an opaque stream below its only snapshot");
      check(written.headVersion === 3n, "suite self-check: three deltas written");
    },
  }),
  defineCase({
    id: "messages.identity-refusals-explain-themselves",
    requirements: ["ERR-007"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const other = await linkAccount(ctx, owner, ctx.platforms.b, "messages");
      const stream = await createStream(ctx, owner, { type: "org.example.shared" });
      await owner.clients.consent.createGrant({ parent: owner.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${other.platform.id}`, streamType: "*", access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } });
      await explained(append(other, stream.name, [{ by: "b" }], { clientSequence: 1 }), { code: Status.PERMISSION_DENIED, reason: "GRANT_READ_ONLY" }, "an append by a platform with a read grant");
      await explained(other.clients.streams.deleteStream({ name: stream.name }), { code: Status.PERMISSION_DENIED, reason: "NOT_STREAM_OWNER" }, "DeleteStream by a platform that does not own the stream");
      const laptop = await ctx.session({ accountId: owner.accountId });
      await owner.clients.devices.revokeDevice({ name: laptop.device });
      await explained(laptop.clients.streams.getStream({ name: stream.name }), { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "a call with a token of a revoked device");
    },
  }),
  defineCase({
    id: "error-messages.checkpoint-refusals-explain-themselves",
    requirements: ["ERR-007"],
    profile: "core",
    async run(ctx) {
      await checkMessages(await checkpointRefusals(ctx));
    },
  }),
  defineCase({
    id: "error-messages.identity-refusals-explain-themselves",
    requirements: ["ERR-007"],
    profile: "identity",
    async run(ctx) {
      await checkMessages(await identityRefusals(ctx));
    },
  }),
];
