import { randomUUID } from "node:crypto";
import { importJWK, SignJWT, type JWTPayload } from "jose";
import { v1 } from "../harness/clients.js";
import { TOKEN_EXCHANGE, type CaseContext } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, expectError, fail, Status } from "../harness/expect.js";
import { snapshotHash } from "../harness/hashing.js";
import { linkAccount } from "../harness/linking.js";
import { append, checkJsonState, createStream, downloadSnapshot, emptyStream, ENCODING, listAllDeltas, verifyStreamChain } from "../harness/streams.js";

// The exact edges of identity rules (assertion claims, link codes, erasure next to a
// neighbour) and exactly what a reply carries (error metadata values, what an
// ALREADY_EXISTS may reveal).

interface RawAssertion {
  readonly header?: Record<string, unknown>;
  readonly claims?: JWTPayload;
  /** Leave `kid` out of the header. */
  readonly withoutKid?: boolean;
}

/** An assertion of platform a for `accountId`, with any header or claim overridden. */
async function rawAssertion(ctx: CaseContext, accountId: string, raw: RawAssertion = {}): Promise<string> {
  const platform = ctx.platforms.a;
  const now = Math.floor(Date.now() / 1000);
  const header: Record<string, unknown> = { alg: "ES256", typ: "continuity-assertion+jwt", ...(raw.withoutKid === true ? {} : { kid: platform.kid }), ...raw.header };
  const claims: JWTPayload = { iss: platform.id, aud: ctx.audience, sub: accountId, iat: now, exp: now + 120, jti: randomUUID(), ...raw.claims };
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(await importJWK(platform.privateJwk, "ES256"));
}

function exchange(ctx: CaseContext, subjectToken: string) {
  return ctx.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken, subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "", deviceId: "", deviceDisplayName: "" });
}

const INVALID_ASSERTION = { code: Status.UNAUTHENTICATED, reason: "ASSERTION_INVALID" } as const;

/** Masks the ids of a status message, so that two messages about different names compare. */
const maskIds = (text: string) => text.replace(/subjects\/[^\s/]+/g, "subjects/<id>").replace(/[a-z0-9-]{8,}/g, "<id>");

export const PRECISION_CASES = [
  defineCase({
    id: "append.move-into-a-child-compares-pointer-tokens",
    requirements: ["HASH-035", "HASH-036", "SNAP-004"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      let sequence = 0;
      const next = (patch: object[]) => append(session, stream.name, [patch], { clientSequence: ++sequence });
      await next([{ op: "add", path: "/a", value: { x: 1 } }]);
      // "Proper prefix" counts reference tokens: /a is not a prefix of /ab, nor of /a~1b.
      await next([{ op: "move", from: "/a", path: "/ab" }]);
      await next([{ op: "add", path: "/a", value: { y: 2 } }, { op: "move", from: "/a", path: "/a" }]);
      await next([{ op: "move", from: "/a", path: "/a~1b" }]);
      checkJsonState(await downloadSnapshot(session, stream.name), { ab: { x: 1 }, "a/b": { y: 2 } }, "state after moves to /ab, to itself and to /a~1b");
      await next([{ op: "add", path: "/a", value: { z: [0] } }]);
      const intoChild = { code: Status.INVALID_ARGUMENT, reason: "MALFORMED_PAYLOAD", metadata: { index: "0" } } as const;
      await expectError(append(session, stream.name, [[{ op: "move", from: "/a", path: "/a/z" }]], { clientSequence: sequence + 1 }), intoChild, "a move from /a into its child /a/z");
      await expectError(append(session, stream.name, [[{ op: "move", from: "/a", path: "/a/z/0" }]], { clientSequence: sequence + 1 }), intoChild, "a move from /a into its grandchild /a/z/0");
      await expectError(append(session, stream.name, [[{ op: "move", from: "/nowhere", path: "/nowhere/x" }]], { clientSequence: sequence + 1 }), intoChild, "a move into a child of a location that does not exist (malformed whatever the state)");
      checkEqual((await verifyStreamChain(session, stream.name)).stream.headVersion, 5n, "head after the refused moves");
    },
  }),
  defineCase({
    id: "token.assertion-claims-at-their-edges",
    requirements: ["TOKEN-001", "TOKEN-003", "TOKEN-006"],
    profile: "core",
    async run(ctx) {
      const accountId = ctx.uniqueId("acct");
      const now = Math.floor(Date.now() / 1000);
      const accepted = async (what: string, raw: RawAssertion) => {
        const response = await exchange(ctx, await rawAssertion(ctx, accountId, raw)).catch((error: unknown) => fail(`${what} must be accepted, got ${(error as Error).message}`));
        check(response.accessToken !== "", `${what} must be accepted`);
      };
      const refused = async (what: string, raw: RawAssertion) => expectError(exchange(ctx, await rawAssertion(ctx, accountId, raw)), INVALID_ASSERTION, what);
      // typ is a media type (RFC 7515 §4.1.9): case-insensitive, "application/" optional.
      await accepted("typ application/continuity-assertion+jwt", { header: { typ: "application/continuity-assertion+jwt" } });
      await accepted("typ in upper case", { header: { typ: "CONTINUITY-ASSERTION+JWT" } });
      await refused("an assertion without typ", { header: { typ: undefined } });
      await refused("typ at+jwt", { header: { typ: "at+jwt" } });
      await refused("typ application/jwt", { header: { typ: "application/jwt" } });
      await refused("typ continuity-assertion+jwt with a suffix", { header: { typ: "continuity-assertion+jwt2" } });
      // aud: one value or an array, compared whole, never as a substring.
      await accepted("aud as an array holding the audience", { claims: { aud: ["someone-else", ctx.audience] } });
      await refused("aud that merely contains the audience", { claims: { aud: `${ctx.audience}-staging` } });
      await refused("aud inside another value", { claims: { aud: `x${ctx.audience}x` } });
      await refused("aud as an array without the audience", { claims: { aud: [`${ctx.audience}-staging`, "other"] } });
      // The 30 s skew applies to exp as to iat; the 300 s lifetime is exp - iat.
      await accepted("exp 10 s in the past (within the skew)", { claims: { iat: now - 100, exp: now - 10 } });
      await refused("exp 60 s in the past", { claims: { iat: now - 100, exp: now - 60 } });
      await accepted("iat 10 s in the future (within the skew)", { claims: { iat: now + 10, exp: now + 100 } });
      await refused("iat 60 s in the future", { claims: { iat: now + 60, exp: now + 200 } });
      await accepted("a lifetime of exactly 300 s", { claims: { iat: now - 10, exp: now + 290 } });
      await refused("a lifetime of 301 s, most of it already past", { claims: { iat: now - 200, exp: now + 101 } });
      await refused("exp before iat", { claims: { iat: now, exp: now - 5 } });
      // kid is optional; when present it must name a key of the issuer's JWKS.
      await accepted("an assertion without kid", { withoutKid: true });
      await refused("a kid the issuer's JWKS does not hold", { header: { kid: "no-such-key" } });
    },
  }),
  defineCase({
    id: "link.redeemed-twice-and-by-a-linked-account",
    requirements: ["LINK-012", "LINK-016", "LINK-011", "LINK-020"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const joinerId = ctx.uniqueId("joiner");
      const assertionOf = (accountId: string, platform = ctx.platforms.b) => ctx.mintAssertion({ platform, accountId });
      const redeem = async (code: string, accountId: string, platform = ctx.platforms.b) => ctx.clients().subjects.redeemLinkCode({ subjectToken: await assertionOf(accountId, platform), code });
      const invalid = { code: Status.NOT_FOUND, reason: "LINK_CODE_INVALID" } as const;
      const first = (await owner.clients.subjects.createLinkCode({ parent: owner.subject })).code;
      const link = await redeem(first, joinerId);
      // The same account, and another account of the same platform, may not use it again.
      await expectError(redeem(first, joinerId), invalid, "the same account redeeming its code a second time");
      await expectError(redeem(first, ctx.uniqueId("joiner")), invalid, "another account of the same platform redeeming a used code");
      // An account already linked to the code's subject: success, the same link, code used up.
      const second = (await owner.clients.subjects.createLinkCode({ parent: owner.subject })).code;
      const again = await redeem(second, joinerId);
      checkEqual(again.accountLink?.name, link.accountLink?.name, "redemption by an account already linked to the code's subject returns the existing link");
      await expectError(redeem(second, ctx.uniqueId("late"), ctx.platforms.c), invalid, "a code consumed by an already-linked account");
      const third = (await owner.clients.subjects.createLinkCode({ parent: owner.subject })).code;
      const own = await redeem(third, owner.accountId, ctx.platforms.a);
      checkEqual([own.accountLink?.platform, own.accountLink?.accountId], [`platforms/${ctx.platforms.a.id}`, owner.accountId], "the code's creator redeeming its own code gets its own link");
      await expectError(redeem(third, ctx.uniqueId("late"), ctx.platforms.c), invalid, "a code consumed by its creator's own account");
      const { accountLinks } = await owner.clients.subjects.listAccountLinks({ parent: owner.subject, pageSize: 0, pageToken: "" });
      checkEqual(accountLinks.map((l) => [l.platform, l.accountId]), [[`platforms/${ctx.platforms.a.id}`, owner.accountId], [`platforms/${ctx.platforms.b.id}`, joinerId]], "account links: no duplicate for re-redemptions");
    },
  }),
  defineCase({
    id: "erase.neighbour-with-the-same-ids-untouched",
    requirements: ["ERASE-004", "ERASE-002", "ISO-003"],
    profile: "identity",
    async run(ctx) {
      const doomed = await ctx.session({ deviceId: "shared-device" });
      const neighbour = await ctx.session({ deviceId: "shared-device" });
      const ids = ["progress", "cart"];
      const written = new Map<string, Buffer>();
      for (const session of [doomed, neighbour]) {
        for (const id of ids) {
          const stream = await createStream(ctx, session, { streamId: id, encoding: id === "cart" ? ENCODING.opaque : ENCODING.mergePatch });
          const receipt = await append(session, stream.name, id === "cart" ? [Buffer.from(`${session.subject} cart`)] : [{ owner: session.subject }], { clientSequence: 1 });
          if (id === "cart") {
            const state = Buffer.from(`snapshot of ${session.subject}`);
            await session.clients.streams.uploadSnapshot((async function* () {
              yield { part: { $case: "header" as const, value: { stream: stream.name, streamUid: stream.uid, version: 1n, headHash: receipt.headHash, encoding: ENCODING.opaque, sizeBytes: BigInt(state.length), snapshotHash: Buffer.from(snapshotHash({ streamUid: stream.uid, version: 1n, headHash: receipt.headHash, encoding: ENCODING.opaque, state })) } } };
              yield { part: { $case: "data" as const, value: state } };
            })());
            written.set(session.subject, state);
          }
        }
        await session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "morning", streams: ids.map((id) => ({ stream: `${session.subject}/streams/${id}` })), resume: undefined });
      }
      await doomed.clients.subjects.deleteSubject({ name: doomed.subject });
      for (const id of ids) {
        const { stream, deltas } = await verifyStreamChain(neighbour, `${neighbour.subject}/streams/${id}`);
        checkEqual([stream.headVersion, deltas.length], [1n, 1], `the neighbour's stream ${id} after the erasure of a subject with the same stream ids`);
      }
      const snapshot = await downloadSnapshot(neighbour, `${neighbour.subject}/streams/cart`);
      checkEqual(snapshot.state.toString(), written.get(neighbour.subject)?.toString(), "the neighbour's uploaded snapshot");
      const { checkpoint } = await neighbour.clients.checkpoints.getCheckpoint({ name: `${neighbour.subject}/checkpoints/morning` });
      checkEqual(checkpoint?.entries.length, 2, "the neighbour's checkpoint of the same id");
      const { devices } = await neighbour.clients.devices.listDevices({ parent: neighbour.subject, pageSize: 0, pageToken: "" });
      checkEqual(devices.map((d) => d.name), [`${neighbour.subject}/devices/shared-device`], "the neighbour's device of the same id");
      const next = await append(neighbour, `${neighbour.subject}/streams/progress`, [{ more: 1 }], { clientSequence: 2 });
      checkEqual(next.headVersion, 2n, "the neighbour's device keeps its client sequence");
      const reborn = await ctx.session({ accountId: doomed.accountId, deviceId: "shared-device" });
      const fresh = await createStream(ctx, reborn, { streamId: "progress" });
      const first = await append(reborn, fresh.name, [{ again: true }], { clientSequence: 1 });
      checkEqual(first.headVersion, 1n, "the erased account starts afresh with the same ids");
    },
  }),
  defineCase({
    id: "errors.metadata-carries-the-exact-values",
    requirements: ["ERR-003", "DELTA-012", "SNAP-006", "COMPACT-003", "CKPT-004", "SNAP-014", "DELTA-011", "SNAP-005", "SNAP-010", "APPEND-012", "APPEND-045"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const json = await createStream(ctx, session);
      const opaque = await createStream(ctx, session, { encoding: ENCODING.opaque });
      await append(session, json.name, [{ a: 1 }, { b: 2 }], { clientSequence: 1 });
      await append(session, json.name, [{ c: 3 }], { clientSequence: 2 });
      const written = await append(session, opaque.name, [Buffer.from("a"), Buffer.from("b"), Buffer.from("c")], { clientSequence: 1 });
      const ahead = { code: Status.OUT_OF_RANGE, reason: "VERSION_AHEAD_OF_HEAD", metadata: { headVersion: "3" } } as const;
      await expectError(session.clients.streams.listDeltas({ stream: json.name, afterVersion: 8n, pageSize: 0, pageToken: "" }), ahead, "ListDeltas after_version 8 of a head of 3");
      await expectError(downloadSnapshot(session, json.name, 8n), ahead, "GetSnapshot at version 8 of a head of 3");
      await expectError(session.clients.streams.compactStream({ stream: json.name, horizonVersion: 8n }), ahead, "CompactStream to 8 of a head of 3");
      await expectError(session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: json.name, version: 8n }], resume: undefined }), ahead, "a checkpoint at version 8 of a head of 3");
      const upload = (version: bigint, stream = opaque) => session.clients.streams.uploadSnapshot((async function* () {
        yield { part: { $case: "header" as const, value: { stream: stream.name, streamUid: stream.uid, version, headHash: Buffer.alloc(32), encoding: stream.encoding, sizeBytes: 1n, snapshotHash: Buffer.alloc(32) } } };
        yield { part: { $case: "data" as const, value: Buffer.from("s") } };
      })());
      await expectError(upload(8n), ahead, "UploadSnapshot at version 8 of a head of 3");
      await expectError(upload(1n, json), { code: Status.FAILED_PRECONDITION, reason: "ENCODING_UNSUPPORTED", metadata: { encoding: "DELTA_ENCODING_JSON_MERGE_PATCH" } }, "UploadSnapshot to a merge-patch stream (the encoding by its value name)");
      await session.clients.streams.compactStream({ stream: json.name, horizonVersion: 2n });
      const state = Buffer.from("s2");
      await session.clients.streams.uploadSnapshot((async function* () {
        yield { part: { $case: "header" as const, value: { stream: opaque.name, streamUid: opaque.uid, version: 3n, headHash: written.headHash, encoding: ENCODING.opaque, sizeBytes: BigInt(state.length), snapshotHash: Buffer.from(snapshotHash({ streamUid: opaque.uid, version: 3n, headHash: written.headHash, encoding: ENCODING.opaque, state })) } } };
        yield { part: { $case: "data" as const, value: state } };
      })());
      await session.clients.streams.compactStream({ stream: opaque.name, horizonVersion: 3n });
      const below = (horizon: string) => ({ code: Status.FAILED_PRECONDITION, reason: "HISTORY_COMPACTED", metadata: { horizonVersion: horizon } }) as const;
      await expectError(session.clients.streams.listDeltas({ stream: json.name, afterVersion: 0n, pageSize: 0, pageToken: "" }), below("2"), "ListDeltas from 0 after compacting to 2");
      await expectError(downloadSnapshot(session, json.name, 1n), below("2"), "GetSnapshot at 1 after compacting to 2");
      await expectError(session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: json.name, version: 1n }], resume: undefined }), below("2"), "a checkpoint at 1 after compacting to 2");
      await expectError(upload(2n), below("3"), "UploadSnapshot at 2 after compacting to 3");
      // Client sequences and indexes name exactly where the request went wrong.
      await expectError(append(session, json.name, [{ d: 4 }], { clientSequence: 5 }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_GAP", metadata: { expectedSequence: "3" } }, "sequence 5 after 2 acknowledged appends of 3 deltas");
      const other = await createStream(ctx, session);
      await expectError(append(session, other.name, [{ d: 4 }], { clientSequence: 2 }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_GAP", metadata: { expectedSequence: "1" } }, "a gap on another stream of the same device");
      const max = ctx.limits.maxDeltaBytes;
      await expectError(append(session, opaque.name, [Buffer.alloc(1), Buffer.alloc(2), Buffer.alloc(max + 1), Buffer.alloc(max + 1)], { clientSequence: 2 }), { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE", metadata: { limit: String(max), index: "2" } }, "the first oversize delta of a batch is named");
      await expectError(append(session, json.name, [{ ok: 1 }, { ok: 2 }, Buffer.from("[1,"), Buffer.from("{")], { clientSequence: 3 }), { code: Status.INVALID_ARGUMENT, reason: "MALFORMED_PAYLOAD", metadata: { index: "2" } }, "the first malformed delta of a batch is named");
    },
  }),
  defineCase({
    id: "stream.already-exists-reveals-nothing",
    requirements: ["STREAM-004", "ISO-010", "ERR-006"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const other = await linkAccount(ctx, owner, ctx.platforms.b, "other");
      const hidden = await createStream(ctx, owner, { streamId: ctx.uniqueId("secret"), encoding: ENCODING.opaque, type: "org.example.diary" });
      await append(owner, hidden.name, [Buffer.from("dear diary")], { clientSequence: 1 });
      const mine = await createStream(ctx, other, { type: "org.example.mine" });
      const create = (name: string) => other.clients.streams.createStream({ parent: other.subject, streamId: name.split("/").pop()!, stream: { ...emptyStream(), type: "org.example.mine", encoding: ENCODING.mergePatch, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND } });
      const exists = { code: Status.ALREADY_EXISTS, reason: "STREAM_ALREADY_EXISTS" } as const;
      const onHidden = await expectError(create(hidden.name), exists, "creating a stream with the id of a stream the caller may not read");
      const onOwn = await expectError(create(mine.name), exists, "creating a stream with the id of the caller's own stream");
      checkEqual(onHidden.info.metadata, onOwn.info.metadata, "ErrorInfo.metadata of ALREADY_EXISTS must not depend on whose stream it is");
      checkEqual(maskIds(onHidden.message), maskIds(onOwn.message), "the ALREADY_EXISTS message must not depend on whose stream it is");
      const told = `${onHidden.message} ${JSON.stringify(onHidden.info.metadata)}`;
      for (const secret of ["diary", "OPAQUE", "opaque", ctx.platforms.a.id, hidden.uid]) {
        check(!told.includes(secret), `ALREADY_EXISTS must not reveal the hidden stream's ${secret}: ${told}`);
      }
      checkEqual((await other.clients.streams.listStreams({ parent: other.subject, pageSize: 0, pageToken: "", type: "" })).streams.map((s) => s.name), [mine.name], "the caller's streams after the collision");
      const { stream } = await owner.clients.streams.getStream({ name: hidden.name });
      checkEqual([stream?.type, stream?.encoding, stream?.headVersion, stream?.ownerPlatform], ["org.example.diary", ENCODING.opaque, 1n, `platforms/${ctx.platforms.a.id}`], "the hidden stream is unchanged");
      checkEqual((await listAllDeltas(owner, hidden.name)).length, 1, "the hidden stream's deltas");
    },
  }),
  defineCase({
    id: "isolation.names-inside-a-request-of-another-subject",
    requirements: ["ISO-001", "ISO-002", "ISO-003"],
    profile: "core",
    async run(ctx) {
      const victim = await ctx.session();
      const victimLaptop = await ctx.session({ accountId: victim.accountId });
      const stream = await createStream(ctx, victim);
      const attacker = await ctx.session();
      const own = await createStream(ctx, attacker);
      const ghost = `subjects/${ctx.uniqueId("never")}`;
      const notFound = { code: Status.NOT_FOUND, reason: "SUBJECT_NOT_FOUND" } as const;
      const checkpoint = (streams: string[]) => attacker.clients.checkpoints.createCheckpoint({ parent: attacker.subject, checkpointId: "", streams: streams.map((name) => ({ stream: name })), resume: undefined });
      const onReal = await expectError(checkpoint([own.name, stream.name]), notFound, "a checkpoint of the caller's subject naming another subject's stream");
      const onGhost = await expectError(checkpoint([own.name, `${ghost}/streams/${stream.name.split("/").pop()}`]), notFound, "a checkpoint naming a stream of a subject never minted");
      checkEqual([onReal.info.metadata, maskIds(onReal.message)], [onGhost.info.metadata, maskIds(onGhost.message)], "the refusal must not tell an existing subject from a missing one");
      const { checkpoint: made } = await checkpoint([own.name]);
      const offer = (targetDevice: string) => attacker.clients.checkpoints.offerHandoff({ parent: attacker.subject, checkpoint: made!.name, targetDevice, ttlSeconds: 0 });
      const toReal = await expectError(offer(victimLaptop.device), notFound, "a handoff offered to another subject's device");
      const toGhost = await expectError(offer(`${ghost}/devices/${victimLaptop.deviceId}`), notFound, "a handoff offered to a device of a subject never minted");
      checkEqual([toReal.info.metadata, maskIds(toReal.message)], [toGhost.info.metadata, maskIds(toGhost.message)], "the refused offer must not tell an existing subject from a missing one");
      const { checkpoints } = await attacker.clients.checkpoints.listCheckpoints({ parent: attacker.subject, pageSize: 0, pageToken: "" });
      checkEqual(checkpoints.map((c) => c.name), [made!.name], "the refused checkpoint created nothing");
    },
  }),
];
