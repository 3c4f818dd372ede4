import type { continuity } from "@continuity/sdk/gen";
import { randomBytes } from "node:crypto";
import { ClientError } from "nice-grpc-common";
import { v1 } from "../harness/clients.js";
import type { Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkBytes, checkEqual, checkError, expectError, fail, Status } from "../harness/expect.js";
import { createHash } from "node:crypto";
import { snapshotPreimage } from "../hash/index.js";
import { snapshotHash } from "../harness/hashing.js";
import { linkAccount } from "../harness/linking.js";
import { append, createStream, downloadSnapshot, ENCODING } from "../harness/streams.js";

// Edges of paging and of snapshot uploads: page tokens that were minted and then damaged or
// padded, and uploads framed wrong at the first message, at a chunk or size bound, or with
// more bytes than announced.

type UploadMessage = continuity.v1.UploadSnapshotRequest;

const BAD_TOKEN = { code: Status.INVALID_ARGUMENT, reason: "INVALID_PAGE_TOKEN" } as const;

/**
 * Damaged forms of a page token the server minted. A page token is opaque (DELTA-024), so
 * each of these is a token the server did not mint, whatever shape the server's tokens have:
 * longer, shorter, with a piece added, or padded far beyond anything a server would mint.
 */
function damaged(token: string): [string, string][] {
  // Q and A differ in a high bit of a base64 digit, so the change survives any decoding.
  const flip = (text: string, at: number) => text.slice(0, at) + (text[at] === "Q" ? "A" : "Q") + text.slice(at + 1);
  return [
    [`${token}.x`, "the token with a piece appended after a dot"],
    [`${token}.`, "the token with a dot appended"],
    [`${token}A`, "the token with one character appended"],
    [`${token}AAAA`, "the token with four characters appended"],
    [token.slice(0, -1), "the token without its last character"],
    [token.slice(0, -4), "the token without its last four characters"],
    [token.slice(1), "the token without its first character"],
    [flip(token, 0), "the token with its first character changed"],
    [flip(token, token.length - 1), "the token with its last character changed"],
    [`.${token}`, "the token after a dot"],
    [token + "A".repeat(2048), "the token padded to over 2 KB"],
    ["A".repeat(4096), "4 KB of one character"],
  ];
}

async function refusesDamaged(what: string, token: string, list: (pageToken: string) => Promise<unknown>): Promise<void> {
  check(token !== "", `${what}: the listing must return a next_page_token to damage`);
  await list(token);
  for (const [bad, how] of damaged(token)) await expectError(list(bad), BAD_TOKEN, `${what} with ${how}`);
}

function upload(session: Session, messages: readonly UploadMessage[]): Promise<continuity.v1.UploadSnapshotResponse> {
  return session.clients.streams.uploadSnapshot((async function* () {
    yield* messages;
  })());
}

const header = (value: continuity.v1.SnapshotHeader): UploadMessage => ({ part: { $case: "header", value } });
const data = (value: Buffer): UploadMessage => ({ part: { $case: "data", value } });

function headerFor(stream: continuity.v1.Stream, version: bigint, headHash: Uint8Array, state: Buffer, sizeBytes = BigInt(state.length)): continuity.v1.SnapshotHeader {
  return { stream: stream.name, streamUid: stream.uid, version, headHash: Buffer.from(headHash), encoding: ENCODING.opaque, sizeBytes, snapshotHash: Buffer.from(snapshotHash({ streamUid: stream.uid, version, headHash, encoding: ENCODING.opaque, state })) };
}

/** An opaque stream with one delta, ready for uploads at version 1. */
async function opaqueAtOne(ctx: Parameters<typeof createStream>[0], session: Session) {
  const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
  const { headHash } = await append(session, stream.name, [Buffer.from("a")], { clientSequence: 1 });
  return { stream, headHash };
}

export const EDGE_CASES = [
  defineCase({
    id: "paging.damaged-page-tokens-refused",
    requirements: ["DELTA-024"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      for (let i = 0; i < 3; i++) await createStream(ctx, session, { encoding: ENCODING.opaque });
      const listStreams = (pageToken: string) => session.clients.streams.listStreams({ parent: session.subject, pageSize: 1, pageToken, type: "" });
      await refusesDamaged("ListStreams", (await listStreams("")).nextPageToken, listStreams);
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      await append(session, stream.name, [Buffer.from("a"), Buffer.from("b"), Buffer.from("c")], { clientSequence: 1 });
      const listDeltas = (pageToken: string) => session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 1, pageToken });
      await refusesDamaged("ListDeltas", (await listDeltas("")).nextPageToken, listDeltas);
      for (let i = 0; i < 2; i++) await session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: undefined });
      const listCheckpoints = (pageToken: string) => session.clients.checkpoints.listCheckpoints({ parent: session.subject, pageSize: 1, pageToken });
      await refusesDamaged("ListCheckpoints", (await listCheckpoints("")).nextPageToken, listCheckpoints);
    },
  }),
  defineCase({
    id: "paging.damaged-identity-page-tokens-refused",
    requirements: ["DELTA-024"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const grantee = await linkAccount(ctx, owner, ctx.platforms.b, "edges");
      await ctx.session({ accountId: owner.accountId });
      for (const type of ["org.example.one", "org.example.two"]) {
        await owner.clients.consent.createGrant({ parent: owner.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${grantee.platform.id}`, streamType: type, access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } });
      }
      const listDevices = (pageToken: string) => owner.clients.devices.listDevices({ parent: owner.subject, pageSize: 1, pageToken });
      await refusesDamaged("ListDevices", (await listDevices("")).nextPageToken, listDevices);
      const listGrants = (pageToken: string) => owner.clients.consent.listGrants({ parent: owner.subject, pageSize: 1, pageToken });
      await refusesDamaged("ListGrants", (await listGrants("")).nextPageToken, listGrants);
      const listLinks = (pageToken: string) => owner.clients.subjects.listAccountLinks({ parent: owner.subject, pageSize: 1, pageToken });
      await refusesDamaged("ListAccountLinks", (await listLinks("")).nextPageToken, listLinks);
    },
  }),
  defineCase({
    id: "snapshot.upload-framing-at-its-edges",
    requirements: ["SNAP-011", "SNAP-012", "SNAP-013", "SNAP-015", "ERR-004"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const { stream, headHash } = await opaqueAtOne(ctx, session);
      const state = Buffer.from("state bytes");
      const good = headerFor(stream, 1n, headHash, state);
      const invalid = { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD" } as const;
      await expectError(upload(session, []), invalid, "an upload of no messages at all");
      await expectError(upload(session, [{ part: undefined }, header(good), data(state)]), invalid, "an upload whose first message is neither header nor data");
      await expectError(upload(session, [header(good), { part: undefined }, data(state)]), invalid, "an upload with a message that is neither header nor data after the header");
      // The violation names the part that is wrong (the missing header, or the data in its
      // place), not a field of a header the client never sent.
      const dataFirst = await expectError(upload(session, [data(state), header(good)]), invalid, "an upload that starts with data");
      const fields = dataFirst.badRequest?.fieldViolations.map((v) => v.field) ?? [];
      check(fields.length > 0 && fields.every((field) => field === "header" || field === "data"), `an upload that starts with data: the violation must name header or data, got ${JSON.stringify(fields)}`);
      // A bad field of the header is named by its path in UploadSnapshotRequest (ERR-004).
      const badName = await expectError(upload(session, [header({ ...good, stream: "streams/not-a-stream-name" }), data(state)]), invalid, "an upload whose header names no stream");
      checkEqual(badName.badRequest?.fieldViolations.map((v) => v.field), ["header.stream"], "the field violation of a header naming no stream");
      // A size exactly at max_snapshot_bytes is within the limit: with too few bytes sent, the
      // upload fails for the bytes (SNAP-012), not for its size (SNAP-013).
      await expectError(upload(session, [header({ ...good, sizeBytes: ctx.limits.maxSnapshotBytes }), data(state)]), { code: Status.INVALID_ARGUMENT, reason: "SNAPSHOT_MISMATCH" }, "size_bytes exactly max_snapshot_bytes, with fewer bytes sent");
      // A chunk of exactly max_chunk_bytes is allowed; the upload is stored and read back.
      const full = randomBytes(ctx.limits.maxChunkBytes);
      const stored = await upload(session, [header(headerFor(stream, 1n, headHash, full)), data(full)]);
      checkEqual(stored.header?.sizeBytes, BigInt(full.length), "the header of an upload of one chunk of exactly max_chunk_bytes");
      checkBytes((await downloadSnapshot(session, stream.name)).state, full, "the snapshot uploaded in one chunk of exactly max_chunk_bytes");
      // The empty state is a snapshot too: size 0 and no data.
      const empty = Buffer.alloc(0);
      const none = await upload(session, [header(headerFor(stream, 1n, headHash, empty))]);
      checkEqual(none.header?.sizeBytes, 0n, "the header of an upload of the empty state");
      checkEqual((await downloadSnapshot(session, stream.name)).state.length, 0, "the empty snapshot replaced the earlier one");
    },
  }),
  defineCase({
    id: "snapshot.upload-refused-once-it-exceeds-its-size",
    requirements: ["SNAP-019"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const { stream, headHash } = await opaqueAtOne(ctx, session);
      const state = Buffer.from("twelve bytes");
      let release = (): void => undefined;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      // The client sends more bytes than announced and then keeps its side open.
      const call = session.clients.streams.uploadSnapshot((async function* () {
        yield header(headerFor(stream, 1n, headHash, state));
        yield data(Buffer.concat([state, Buffer.from("and more")]));
        await held;
      })());
      const outcome = await Promise.race([call.then(() => "succeeded" as const, (error: unknown) => error), new Promise<"waiting">((resolve) => setTimeout(() => resolve("waiting"), 5_000))]);
      release();
      if (outcome === "waiting") {
        await call.catch(() => undefined);
        fail("an upload that sent more bytes than size_bytes was not refused within 5 s while the client kept its side open");
      }
      if (outcome === "succeeded") fail("an upload of more bytes than size_bytes succeeded");
      if (!(outcome instanceof ClientError)) throw outcome;
      checkError(outcome, { code: Status.INVALID_ARGUMENT, reason: "SNAPSHOT_MISMATCH" }, "an upload of more bytes than size_bytes");
      checkEqual((await downloadSnapshot(session, stream.name)).header.version, 0n, "nothing of the refused upload was stored");
    },
  }),
  defineCase({
    id: "link.retry-after-counts-down",
    requirements: ["LINK-027"],
    profile: "identity",
    async run(ctx) {
      const guesser = await ctx.mintAssertion({ platform: ctx.platforms.b, accountId: ctx.uniqueId("guesser") });
      const redeem = () => ctx.clients().subjects.redeemLinkCode({ subjectToken: guesser, code: "QQQQQ-QQQQQ" });
      const limited = { code: Status.RESOURCE_EXHAUSTED, reason: "LINK_CODE_ATTEMPTS_EXCEEDED", metadataKeys: ["retryAfterSeconds"] } as const;
      // LINK-019 lets ten failures through at most; the eleventh call is refused at the latest.
      let first: number | undefined;
      for (let attempt = 1; attempt <= 11 && first === undefined; attempt++) {
        const error = await redeem().then(() => fail(`redemption ${attempt} of a wrong code must fail`), (e: unknown) => e);
        if (error instanceof ClientError && error.code === Status.RESOURCE_EXHAUSTED) first = Number(checkError(error, limited, `redemption ${attempt}`).info.metadata.retryAfterSeconds);
        else checkError(error, { code: Status.NOT_FOUND, reason: "LINK_CODE_INVALID" }, `failed redemption ${attempt}`);
      }
      check(first !== undefined, "eleven failed redemptions of one account were never refused as LINK_CODE_ATTEMPTS_EXCEEDED (LINK-019)");
      await new Promise((resolve) => setTimeout(resolve, 2_100));
      const later = Number((await expectError(redeem(), limited, "a redemption 2 s later")).info.metadata.retryAfterSeconds);
      check(Number.isInteger(first) && Number.isInteger(later) && later >= 1 && later <= first - 1 && first <= 600, `retryAfterSeconds must count down as the window passes: ${first} s, then ${later} s two seconds later`);
    },
  }),
  defineCase({
    id: "snapshot.upload-across-a-recreated-stream-stores-nothing",
    requirements: ["STREAM-022", "SNAP-012", "SNAP-007"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const streamId = ctx.uniqueId("recreated");
      const old = await createStream(ctx, session, { encoding: ENCODING.opaque, streamId });
      const { headHash } = await append(session, old.name, [Buffer.from("a")], { clientSequence: 1 });
      const state = Buffer.from("the old stream's state at version 1");
      let release = (): void => undefined;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      // The header names the old stream; its bytes arrive once the stream was deleted and a
      // new one made under the same id, which has a version 1 of its own by then.
      const call = session.clients.streams.uploadSnapshot((async function* () {
        yield header(headerFor(old, 1n, headHash, state));
        await gate;
        yield data(state);
      })());
      const settled = call.then(() => undefined, (error: unknown) => error);
      await new Promise((resolve) => setTimeout(resolve, 500));
      await session.clients.streams.deleteStream({ name: old.name });
      const recreated = await createStream(ctx, session, { encoding: ENCODING.opaque, streamId });
      await append(session, recreated.name, [Buffer.from("b")], { clientSequence: 1 });
      release();
      const outcome = await settled;
      if (outcome === undefined) fail("an upload for a stream deleted and created again while its bytes arrived succeeded");
      // Either answer is right: the stream the header named is gone, or the bytes do not match
      // the new stream's chain.
      const code = outcome instanceof ClientError && outcome.code === Status.INVALID_ARGUMENT ? Status.INVALID_ARGUMENT : Status.NOT_FOUND;
      checkError(outcome, { code, reason: code === Status.NOT_FOUND ? "STREAM_NOT_FOUND" : "SNAPSHOT_MISMATCH" }, "an upload whose stream was deleted and created again before its bytes arrived");
      const snapshot = await downloadSnapshot(session, recreated.name);
      checkEqual([snapshot.header.streamUid, snapshot.header.version], [recreated.uid, 0n], "the new stream has no uploaded snapshot (the old stream's upload must not land on it)");
    },
  }),
  defineCase({
    id: "grant.each-grant-counts-for-its-grantee-type-and-access",
    requirements: ["GRANT-003", "GRANT-004", "ISO-010", "ISO-011"],
    profile: "identity",
    async run(ctx) {
      const a = await ctx.session();
      const b = await linkAccount(ctx, a, ctx.platforms.b, "b");
      const c = await linkAccount(ctx, a, ctx.platforms.c, "c");
      const shareWith = (grantee: Session, streamType: string, access: continuity.v1.GrantAccess) =>
        a.clients.consent.createGrant({ parent: a.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${grantee.platform.id}`, streamType, access, createTime: undefined, revokeTime: undefined } });
      const x = await createStream(ctx, a, { type: "org.example.x" });
      const y = await createStream(ctx, a, { type: "org.example.y" });
      const z = await createStream(ctx, a, { type: "org.example.z" });
      // b may read every type of a's and write y only; c (read-only scope) may write x, which
      // gives b nothing: a grant counts for its own grantee alone.
      await shareWith(b, "*", v1.GrantAccess.GRANT_ACCESS_READ);
      await shareWith(b, "org.example.y", v1.GrantAccess.GRANT_ACCESS_READ_WRITE);
      await shareWith(c, "org.example.x", v1.GrantAccess.GRANT_ACCESS_READ_WRITE);
      await append(b, y.name, [{ by: "b" }], { clientSequence: 1 });
      const readOnly = { code: Status.PERMISSION_DENIED, reason: "GRANT_READ_ONLY" } as const;
      await expectError(append(b, x.name, [{ by: "b" }], { clientSequence: 1 }), readOnly, "b writing x, which it may only read (the read-write grant for x is c's)");
      await expectError(append(b, z.name, [{ by: "b" }], { clientSequence: 1 }), readOnly, "b writing z, which its read grant for * covers and its read-write grant for y does not");
      await expectError(b.clients.streams.compactStream({ stream: z.name, horizonVersion: 0n }), readOnly, "b compacting z");
      // c holds one grant, for x: it reads x and nothing else of a's.
      await c.clients.streams.getStream({ name: x.name });
      const missing = { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" } as const;
      for (const stream of [y, z]) await expectError(c.clients.streams.getStream({ name: stream.name }), missing, `c reading ${stream.type}, which no grant of c's covers`);
      const { streams } = await c.clients.streams.listStreams({ parent: a.subject, pageSize: 0, pageToken: "", type: "" });
      checkEqual(streams.map((s) => s.name), [x.name], "the streams c lists with one grant for x");
      // A stream of b's own is no stream of a's: a's grants to b do not make b's streams a's.
      const ofB = await createStream(ctx, b, { type: "org.example.y" });
      await expectError(c.clients.streams.getStream({ name: ofB.name }), missing, "c reading b's stream of a type a granted nobody");
      await expectError(append(a, ofB.name, [{ by: "a" }], { clientSequence: 1 }), missing, "a writing b's stream, which no grant from b shares with a");
    },
  }),
  defineCase({
    id: "snapshot.opaque-reads-and-uploads-at-their-bounds",
    requirements: ["SNAP-006", "SNAP-012", "SNAP-015", "SNAP-002", "CKPT-010"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const { stream, headHash } = await opaqueAtOne(ctx, session);
      // Announced 16 bytes, sent 10, and a snapshot_hash over exactly what was sent under that
      // header: the bytes match the hash, but they do not add up to size_bytes.
      const sent = Buffer.from("ten bytes!");
      const announced = 16;
      const preimage = snapshotPreimage({ streamUid: stream.uid, version: 1n, headHash, encoding: ENCODING.opaque, state: Buffer.alloc(announced) });
      const prefix = preimage.subarray(0, preimage.length - announced);
      const hashOfSent = createHash("sha256").update(prefix).update(sent).digest();
      await expectError(upload(session, [header({ ...headerFor(stream, 1n, headHash, sent, BigInt(announced)), snapshotHash: hashOfSent }), data(sent)]), { code: Status.INVALID_ARGUMENT, reason: "SNAPSHOT_MISMATCH" }, "an upload of fewer bytes than size_bytes whose snapshot_hash covers the bytes sent");
      const state = Buffer.from("state at one");
      await upload(session, [header(headerFor(stream, 1n, headHash, state)), data(state)]);
      await expectError(downloadSnapshot(session, stream.name, 2n), { code: Status.OUT_OF_RANGE, reason: "VERSION_AHEAD_OF_HEAD", metadata: { headVersion: "1" } }, "GetSnapshot of an opaque stream above its head (a snapshot exists below)");
      checkBytes((await downloadSnapshot(session, stream.name, 1n)).state, state, "GetSnapshot at the version of the upload");
      // A JSON state of exactly max_chunk_bytes travels in one chunk, with no empty one after it.
      // It is built of as many members as deltas of max_delta_bytes need, one member a delta:
      // {"t0":"…","t1":"…",…}, where each member costs its string and `"tN":""`, and every
      // member but the first a comma.
      const chunkBytes = ctx.limits.maxChunkBytes;
      const perMember = ctx.limits.maxDeltaBytes - 64;
      const members = Math.ceil(chunkBytes / perMember);
      const framing = 2 + Array.from({ length: members }, (_, i) => Buffer.byteLength(`"t${i}":""`)).reduce((a, b) => a + b, 0) + (members - 1);
      if (chunkBytes - framing >= members && members <= 64 && chunkBytes <= Number(ctx.limits.maxSnapshotBytes)) {
        const json = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
        let left = chunkBytes - framing;
        for (let i = 0; i < members; i++) {
          const length = i === members - 1 ? left : Math.min(perMember, left - (members - 1 - i));
          left -= length;
          await append(session, json.name, [{ [`t${i}`]: "x".repeat(length) }], { clientSequence: i + 1 });
        }
        const whole = await downloadSnapshot(session, json.name, undefined, chunkBytes);
        checkEqual([whole.state.length, whole.chunks], [chunkBytes, 1], "a JSON state of exactly max_chunk_bytes: its size and its chunks");
      } else {
        ctx.note(`max_chunk_bytes ${chunkBytes} against max_delta_bytes ${ctx.limits.maxDeltaBytes}: a JSON state of one full chunk was not built`);
      }
      // A checkpoint made with a token bound to no device names no device.
      const unbound = await ctx.session({ accountId: session.accountId, deviceId: null });
      const { checkpoint } = await unbound.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: undefined });
      checkEqual(checkpoint?.device, "", "Checkpoint.device of a checkpoint made with a token bound to no device");
      const { checkpoint: read } = await session.clients.checkpoints.getCheckpoint({ name: checkpoint!.name });
      checkEqual(read?.device, "", "Checkpoint.device read back");
    },
  }),
];
