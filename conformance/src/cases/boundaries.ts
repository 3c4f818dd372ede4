import type { continuity } from "@continuity/sdk/gen";
import { v1 } from "../harness/clients.js";
import { TOKEN_EXCHANGE, type CaseContext, type Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, expectError, Status } from "../harness/expect.js";
import { resumePayloadBytes } from "../harness/hashing.js";
import { linkAccount } from "../harness/linking.js";
import { append, createStream, emptyStream, ENCODING, listAllDeltas } from "../harness/streams.js";
import { openSubscription } from "../harness/subscription.js";

// Limits at their exact boundary, measured in bytes where the spec says bytes (multi-byte
// UTF-8 makes bytes and characters differ), and the paging rules on every List method.

const BAD_TOKEN = { code: Status.INVALID_ARGUMENT, reason: "INVALID_PAGE_TOKEN" } as const;
const BAD_SIZE = { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["page_size"] } as const;

/** A JSON merge patch `{"t":"…"}` of exactly `bytes` UTF-8 bytes, mostly two-byte characters. */
function mergePatchOfBytes(bytes: number): Buffer {
  const overhead = Buffer.byteLength('{"t":""}');
  const body = bytes - overhead;
  const text = "é".repeat(Math.floor(body / 2)) + "e".repeat(body % 2);
  const payload = Buffer.from(`{"t":"${text}"}`, "utf8");
  check(payload.length === bytes, `suite self-check: payload of ${bytes} bytes`);
  return payload;
}

/** One List method as the paging checks drive it. */
interface Lister {
  readonly method: string;
  list(pageSize: number, pageToken: string): Promise<{ names: string[]; nextPageToken: string }>;
}

/** Pages through a List method with `pageSize`, checking the page bound, until the token is empty. */
async function pageThrough(lister: Lister, pageSize: number, effective: number): Promise<string[]> {
  const names: string[] = [];
  let token = "";
  for (let page = 0; page < 1000; page++) {
    const result = await lister.list(pageSize, token);
    check(result.names.length <= effective, `${lister.method}: a page of page_size ${pageSize} held ${result.names.length} items, above ${effective}`);
    names.push(...result.names);
    token = result.nextPageToken;
    if (token === "") return names;
  }
  return names;
}

/**
 * The paging rules on one List method holding `count` items: the default page, a page size
 * above max_page_size lowered (when there are more items than it), every item once across
 * pages, a negative page size, and page tokens that are garbage or belong to `foreign`.
 */
async function checkPaging(ctx: CaseContext, lister: Lister, count: number, defaultSize: number, foreign: readonly [string, string][]): Promise<void> {
  const max = ctx.limits.maxPageSize;
  const first = await lister.list(0, "");
  checkEqual(first.names.length, Math.min(count, defaultSize, max), `${lister.method}: page_size 0 selects the default of ${defaultSize}`);
  if (count > defaultSize) check(first.names.length === 0 || first.nextPageToken !== "", `${lister.method}: a default page short of the end carries a token`);
  const all = await pageThrough(lister, 0, Math.min(defaultSize, max));
  checkEqual(new Set(all).size, all.length, `${lister.method}: no item twice across pages`);
  checkEqual(all.length, count, `${lister.method}: items across default pages`);
  checkEqual(await pageThrough(lister, 7, 7), all, `${lister.method}: pages of 7 yield the same items in the same order`);
  if (count > max) {
    const capped = await lister.list(max + 1, "");
    checkEqual(capped.names.length, max, `${lister.method}: page_size max_page_size + 1 is lowered to max_page_size`);
  }
  await expectError(lister.list(-1, ""), BAD_SIZE, `${lister.method} with page_size -1`);
  await expectError(lister.list(5, "garbage-token"), BAD_TOKEN, `${lister.method} with a garbage page token`);
  if (first.nextPageToken !== "") {
    // A character in the middle: in base64 the last one may carry bits a decoder ignores, so
    // changing the end could leave the same token (about one run in 256).
    const token = first.nextPageToken;
    const at = Math.floor(token.length / 2);
    const flipped = `${token.slice(0, at)}${token[at] === "A" ? "B" : "A"}${token.slice(at + 1)}`;
    await expectError(lister.list(5, flipped), BAD_TOKEN, `${lister.method} with an altered page token`);
  }
  for (const [what, token] of foreign) await expectError(lister.list(5, token), BAD_TOKEN, `${lister.method} with ${what}`);
}

async function tokenOf(what: string, call: () => Promise<{ nextPageToken: string }>): Promise<[string, string]> {
  const { nextPageToken } = await call();
  check(nextPageToken !== "", `suite self-check: ${what} has a next page`);
  return [what, nextPageToken];
}

const streamLister = (session: Session, type = ""): Lister => ({
  method: "ListStreams",
  list: async (pageSize, pageToken) => {
    const r = await session.clients.streams.listStreams({ parent: session.subject, pageSize, pageToken, type });
    return { names: r.streams.map((s) => s.name), nextPageToken: r.nextPageToken };
  },
});
const checkpointLister = (session: Session): Lister => ({
  method: "ListCheckpoints",
  list: async (pageSize, pageToken) => {
    const r = await session.clients.checkpoints.listCheckpoints({ parent: session.subject, pageSize, pageToken });
    return { names: r.checkpoints.map((c) => c.name), nextPageToken: r.nextPageToken };
  },
});
const deviceLister = (session: Session): Lister => ({
  method: "ListDevices",
  list: async (pageSize, pageToken) => {
    const r = await session.clients.devices.listDevices({ parent: session.subject, pageSize, pageToken });
    return { names: r.devices.map((d) => d.name), nextPageToken: r.nextPageToken };
  },
});
const grantLister = (session: Session): Lister => ({
  method: "ListGrants",
  list: async (pageSize, pageToken) => {
    const r = await session.clients.consent.listGrants({ parent: session.subject, pageSize, pageToken });
    return { names: r.grants.map((g) => g.name), nextPageToken: r.nextPageToken };
  },
});
const linkLister = (session: Session): Lister => ({
  method: "ListAccountLinks",
  list: async (pageSize, pageToken) => {
    const r = await session.clients.subjects.listAccountLinks({ parent: session.subject, pageSize, pageToken });
    return { names: r.accountLinks.map((l) => l.name), nextPageToken: r.nextPageToken };
  },
});

/** Runs `count` calls, `width` at a time. */
async function inParallel(count: number, width: number, call: (index: number) => Promise<unknown>): Promise<void> {
  for (let start = 0; start < count; start += width) {
    await Promise.all(Array.from({ length: Math.min(width, count - start) }, (_, i) => call(start + i)));
  }
}

/** The most items a case creates to see max_page_size lower a page size. */
const MAX_ITEMS_FOR_CAP = 1200;

export const BOUNDARY_CASES = [
  defineCase({
    id: "limit.utf8-bytes-at-exact-boundaries",
    requirements: ["LIMIT-002", "APPEND-045", "CKPT-006", "TOKEN-016", "HASH-041"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const max = ctx.limits.maxDeltaBytes;
      const stream = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      // Payload limits count bytes: far fewer characters than bytes must still be refused.
      await expectError(append(session, stream.name, [mergePatchOfBytes(max + 1)], { clientSequence: 1 }), { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE", metadata: { limit: String(max), index: "0" } }, `a JSON delta of ${max + 1} bytes in about ${Math.ceil(max / 2)} characters`);
      const exact = await append(session, stream.name, [mergePatchOfBytes(max)], { clientSequence: 1 });
      checkEqual(exact.headVersion, 1n, "a JSON delta of exactly max_delta_bytes bytes of multi-byte text");
      // The resume payload's limit counts bytes of its canonical JSON, where non-ASCII
      // characters are UTF-8, never \u escapes.
      const limit = ctx.limits.maxResumePayloadBytes;
      const payload = (position: string): continuity.v1.ResumePayload => ({ activityType: "org.example.reading", resource: "book-7", position, fallbackUrl: "https://example.org/ö", attributes: { chapter: "Kapitel fünf", mood: "🙂" } });
      const base = resumePayloadBytes(payload("")).length;
      const room = limit - base;
      const fill = (bytes: number) => "€".repeat(Math.floor(bytes / 3)) + "e".repeat(bytes % 3);
      checkEqual(resumePayloadBytes(payload(fill(room))).length, limit, "suite self-check: resume payload of exactly the limit");
      const create = (position: string) => session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: payload(position) });
      const { checkpoint } = await create(fill(room));
      checkEqual(checkpoint?.resume?.position, fill(room), "a resume payload of exactly max_resume_payload_bytes in multi-byte text");
      await expectError(create(fill(room + 1)), { code: Status.RESOURCE_EXHAUSTED, reason: "RESUME_PAYLOAD_TOO_LARGE", metadata: { limit: String(limit) } }, "a resume payload one byte over in multi-byte text");
      // A display name is limited in characters, not bytes: 100 two-byte characters fit.
      const exchange = (deviceDisplayName: string) => ctx.mintAssertion({ platform: ctx.platforms.a, accountId: session.accountId }).then((subjectToken) => ctx.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken, subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "", deviceId: ctx.uniqueId("tv"), deviceDisplayName }));
      const named = await exchange("é".repeat(100));
      check(named.device !== "", "an exchange with a display name of 100 two-byte characters");
      await expectError(exchange("é".repeat(101)), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["device_display_name"] }, "a display name of 101 two-byte characters");
    },
  }),
  defineCase({
    id: "checkpoint.stream-count-at-the-limit",
    requirements: ["CKPT-005", "LIMIT-002"],
    profile: "core",
    async run(ctx) {
      const max = ctx.limits.maxCheckpointStreams;
      if (max > 500) ctx.skip(`max_checkpoint_streams is ${max}; the suite creates at most 501 streams for this case`);
      const session = await ctx.session();
      const streams: string[] = [];
      await inParallel(max + 1, 5, async (i) => {
        const { stream } = await session.clients.streams.createStream({ parent: session.subject, streamId: `cp-${String(i).padStart(4, "0")}`, stream: { ...emptyStream(), type: "org.example.many", encoding: ENCODING.opaque, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND } });
        streams.push(stream!.name);
      });
      streams.sort();
      const create = (names: string[]) => session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: names.map((stream) => ({ stream })), resume: undefined });
      const { checkpoint } = await create(streams.slice(0, max));
      checkEqual(checkpoint?.entries.length, max, `a checkpoint of exactly max_checkpoint_streams (${max}) streams`);
      await expectError(create(streams), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["streams"] }, `a checkpoint of ${max + 1} streams`);
    },
  }),
  defineCase({
    id: "subscription.batch-of-max-batch-bytes-is-one-event",
    requirements: ["SUB-010", "LIMIT-002", "DELTA-021"],
    profile: "core",
    // Appending max_batch_bytes beside the heavy cases can outlast the 10 s call bound.
    exclusive: true,
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const { maxBatchBytes, maxDeltaBytes, maxBatchDeltas } = ctx.limits;
      const count = Math.min(Math.ceil(maxBatchBytes / maxDeltaBytes), maxBatchDeltas);
      const sizes = Array.from({ length: count }, (_, i) => (i < count - 1 ? maxDeltaBytes : Math.min(maxDeltaBytes, maxBatchBytes - maxDeltaBytes * (count - 1))));
      const sub = openSubscription(session, "", ctx.signal);
      try {
        await sub.expectEvent("ready");
        // More bytes than the 4 MiB a gRPC message holds by default, in one batch.
        const batch = await append(session, stream.name, sizes.map((size, i) => Buffer.alloc(size, i + 1)), { clientSequence: 1 });
        const event = await sub.expectEvent("deltasAppended", { timeoutMs: 20_000 });
        checkEqual(event.event.value.deltas.map((d) => d.version), batch.receipts.map((r) => r.version), `one DeltasAppended event for a batch of ${sizes.reduce((a, b) => a + b, 0)} bytes`);
        checkEqual(event.event.value.deltas.map((d) => d.payload.length), sizes, "payload sizes in the event");
      } finally {
        sub.close();
      }
      const listed = await listAllDeltas(session, stream.name, 0n, ctx.limits.maxPageSize);
      checkEqual(listed.map((d) => d.payload.length), sizes, "ListDeltas of the same batch, one page");
    },
  }),
  defineCase({
    id: "paging.core-lists-defaults-caps-and-tokens",
    requirements: ["DELTA-020", "DELTA-021", "DELTA-022", "DELTA-024", "STREAM-011", "CKPT-021"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const other = await ctx.session();
      const max = ctx.limits.maxPageSize;
      await inParallel(51, 5, (i) => session.clients.streams.createStream({ parent: session.subject, streamId: `s-${String(i).padStart(3, "0")}`, stream: { ...emptyStream(), type: i % 2 === 0 ? "org.example.even" : "org.example.odd", encoding: ENCODING.opaque, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND } }));
      for (let i = 0; i < 3; i++) await createStream(ctx, other);
      const first = `${session.subject}/streams/s-000`;
      // One default page and a bit: the cap of max_page_size is exercised on ListDevices, whose
      // items are the cheapest to make (paging.identity-lists-defaults-caps-and-tokens).
      const checkpoints = 51;
      await inParallel(checkpoints, 5, () => session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: first }], resume: undefined }));
      for (let i = 0; i < 3; i++) await other.clients.checkpoints.createCheckpoint({ parent: other.subject, checkpointId: "", streams: [{ stream: (await other.clients.streams.listStreams({ parent: other.subject, pageSize: 1, pageToken: "", type: "" })).streams[0]!.name }], resume: undefined });
      const streamToken = await tokenOf("a ListStreams page token", () => session.clients.streams.listStreams({ parent: session.subject, pageSize: 2, pageToken: "", type: "" }));
      const oddToken = await tokenOf("a ListStreams page token of another type filter", () => session.clients.streams.listStreams({ parent: session.subject, pageSize: 2, pageToken: "", type: "org.example.odd" }));
      const checkpointToken = await tokenOf("a ListCheckpoints page token", () => session.clients.checkpoints.listCheckpoints({ parent: session.subject, pageSize: 2, pageToken: "" }));
      const othersStreams = await tokenOf("another subject's ListStreams page token", () => other.clients.streams.listStreams({ parent: other.subject, pageSize: 1, pageToken: "", type: "" }));
      const othersCheckpoints = await tokenOf("another subject's ListCheckpoints page token", () => other.clients.checkpoints.listCheckpoints({ parent: other.subject, pageSize: 1, pageToken: "" }));
      const deltaStream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      await append(session, deltaStream.name, [Buffer.from("a"), Buffer.from("b"), Buffer.from("c")], { clientSequence: 1 });
      const deltaToken = await tokenOf("a ListDeltas page token", () => session.clients.streams.listDeltas({ stream: deltaStream.name, afterVersion: 0n, pageSize: 1, pageToken: "" }));
      await checkPaging(ctx, streamLister(session), 52, 50, [checkpointToken, othersStreams, oddToken, deltaToken]);
      await checkPaging(ctx, checkpointLister(session), checkpoints, 50, [streamToken, othersCheckpoints, deltaToken]);
      // ListDeltas: a token belongs to its stream and its after_version.
      const listDeltas = (stream: string, afterVersion: bigint, pageToken: string) => session.clients.streams.listDeltas({ stream, afterVersion, pageSize: 1, pageToken });
      await expectError(listDeltas(deltaStream.name, 1n, deltaToken[1]), BAD_TOKEN, "ListDeltas with a token of another after_version");
      const sibling = await createStream(ctx, session, { encoding: ENCODING.opaque });
      await append(session, sibling.name, [Buffer.from("a"), Buffer.from("b"), Buffer.from("c")], { clientSequence: 1 });
      await expectError(listDeltas(sibling.name, 0n, deltaToken[1]), BAD_TOKEN, "ListDeltas with a token of another stream");
      await expectError(listDeltas(deltaStream.name, 0n, streamToken[1]), BAD_TOKEN, "ListDeltas with a ListStreams page token");
      await expectError(listDeltas(deltaStream.name, 0n, "garbage"), BAD_TOKEN, "ListDeltas with a garbage page token");
    },
  }),
  defineCase({
    id: "paging.identity-lists-defaults-caps-and-tokens",
    requirements: ["DELTA-020", "DELTA-021", "DELTA-022", "DELTA-024", "DEVICE-003", "GRANT-005", "LINK-020"],
    profile: "identity",
    timeoutMs: 60_000,
    async run(ctx) {
      const owner = await ctx.session();
      const grantee = await linkAccount(ctx, owner, ctx.platforms.b, "b");
      const other = await ctx.session();
      const max = ctx.limits.maxPageSize;
      // Two devices exist already (the owner's and the grantee's).
      const devices = Math.min(Math.max(51, max + 1), MAX_ITEMS_FOR_CAP);
      // Few calls at a time, so that the server keeps serving the cases running beside this one.
      await inParallel(devices - 2, 10, (i) => owner.clients.devices.registerDevice({ parent: owner.subject, deviceId: `d-${String(i).padStart(4, "0")}`, displayName: "" }));
      await inParallel(51, 10, (i) => owner.clients.consent.createGrant({ parent: owner.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${grantee.platform.id}`, streamType: `org.example.t${i}`, access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } }));
      for (let i = 0; i < 2; i++) await other.clients.devices.registerDevice({ parent: other.subject, deviceId: `x-${i}`, displayName: "" });
      const deviceToken = await tokenOf("a ListDevices page token", () => owner.clients.devices.listDevices({ parent: owner.subject, pageSize: 1, pageToken: "" }));
      const grantToken = await tokenOf("a ListGrants page token", () => owner.clients.consent.listGrants({ parent: owner.subject, pageSize: 1, pageToken: "" }));
      const linkToken = await tokenOf("a ListAccountLinks page token", () => owner.clients.subjects.listAccountLinks({ parent: owner.subject, pageSize: 1, pageToken: "" }));
      const othersDevices = await tokenOf("another subject's ListDevices page token", () => other.clients.devices.listDevices({ parent: other.subject, pageSize: 1, pageToken: "" }));
      const streamToken = await tokenOf("a ListStreams page token", async () => {
        for (let i = 0; i < 2; i++) await createStream(ctx, owner);
        return owner.clients.streams.listStreams({ parent: owner.subject, pageSize: 1, pageToken: "", type: "" });
      });
      await checkPaging(ctx, deviceLister(owner), devices, 50, [grantToken, linkToken, othersDevices, streamToken]);
      await checkPaging(ctx, grantLister(owner), 51, 50, [deviceToken, linkToken, streamToken]);
      await checkPaging(ctx, grantLister(grantee), 51, 50, [deviceToken, streamToken]);
      await checkPaging(ctx, linkLister(owner), 2, 50, [deviceToken, grantToken, streamToken]);
    },
  }),
];
