import type { continuity } from "@continuity/sdk/gen";
import { Metadata } from "nice-grpc";
import { v1 } from "../harness/clients.js";
import type { Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, expectError, Status, type ExpectedError } from "../harness/expect.js";
import { snapshotHash } from "../harness/hashing.js";
import { linkAccount } from "../harness/linking.js";
import { append, createStream, ENCODING, POLICY } from "../harness/streams.js";

// ERR-007 (SHOULD): a status message is a short English sentence that helps a developer. A
// client never branches on it, but a server that answers a refusal with an empty message
// leaves the developer with a bare code. Every refusal below must come with a message that
// says something, besides the code, reason and metadata expectError checks as always.

type UploadMessage = continuity.v1.UploadSnapshotRequest;

/** Checks the error as expectError does, then that its status message is a sentence of some sort. */
async function explained(call: Promise<unknown> | (() => Promise<unknown>), expected: ExpectedError, what: string): Promise<void> {
  const error = await expectError(call, expected, what);
  const message = error.message.trim();
  check(/[A-Za-z]{2,}/.test(message) && message !== error.info.reason, `${what}: ${error.info.reason} needs a status message that helps a developer (ERR-007), got ${JSON.stringify(error.message)}`);
}

function upload(session: Session, messages: readonly UploadMessage[]): Promise<unknown> {
  return session.clients.streams.uploadSnapshot((async function* () {
    yield* messages;
  })());
}

const header = (value: continuity.v1.SnapshotHeader): UploadMessage => ({ part: { $case: "header", value } });
const data = (value: Buffer): UploadMessage => ({ part: { $case: "data", value } });

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
];
