import { Metadata } from "nice-grpc";
import { v1 } from "../harness/clients.js";
import { TOKEN_EXCHANGE, type CaseContext, type Session } from "../harness/context.js";
import { defineCase, type ProfileName } from "../harness/define-case.js";
import { check, checkEqual, expectError, Status } from "../harness/expect.js";
import { snapshotHash } from "../harness/hashing.js";
import { append, createStream, downloadSnapshot, ENCODING, listAllDeltas, POLICY } from "../harness/streams.js";
import { AUTHENTICATED_PROBES, namesIn } from "./probes.js";
import { linkAccount } from "../harness/linking.js";

const SCOPES = ["state.read", "state.write", "identity.manage"] as const;

/** Longest token lifetime `auth.token-expiry` waits out. */
const TOKEN_EXPIRY_WAIT_SECONDS = 10;
/** Token lifetime of the server `auth.token-expiry` starts in spawn mode. */
const SHORT_TOKEN_SECONDS = 5;

async function scopeMatrix(ctx: CaseContext, profile: ProfileName): Promise<void> {
  const full = await ctx.session();
  const targets = namesIn(full.subject, { stream: "nope", checkpoint: "nope", handoff: "nope", device: full.deviceId, grant: "nope", accountLink: "nope" });
  for (const missing of SCOPES) {
    const others = SCOPES.filter((scope) => scope !== missing).join(" ");
    const limited = await ctx.session({ accountId: full.accountId, deviceId: full.deviceId, scope: others });
    checkEqual(limited.exchange.scope.split(" ").sort(), others.split(" ").sort(), `scopes granted for "${others}"`);
    for (const probe of AUTHENTICATED_PROBES.filter((p) => p.profile === profile && p.scope === missing)) {
      await expectError(probe.call(limited.clients, targets), { code: Status.PERMISSION_DENIED, reason: "SCOPE_INSUFFICIENT", metadata: { scope: missing } }, `${probe.method} without ${missing} (scope is checked before anything about the request)`);
    }
  }
  const readOnly = await ctx.session({ accountId: full.accountId, deviceId: full.deviceId, scope: "state.read" });
  const { subject } = await readOnly.clients.subjects.getSubject({ name: readOnly.subject });
  checkEqual(subject?.name, full.subject, "GetSubject works with any scope");
  check(subject?.createTime !== undefined, "Subject.create_time must be set");
}

async function readGrant(ctx: CaseContext): Promise<{ owner: Session; reader: Session }> {
  const owner = await ctx.session();
  const reader = await linkAccount(ctx, owner, ctx.platforms.b, "reader");
  return { owner, reader };
}

/** Scopes, read-only access and the order of checks. */
export const ACCESS_CASES = [
  defineCase({
    id: "auth.scope-matrix-core",
    requirements: ["AUTH-010", "AUTH-011", "AUTH-012", "STREAM-006", "STREAM-014", "DELTA-014", "SNAP-008", "SNAP-018", "COMPACT-005", "CKPT-009", "CKPT-023", "RESTORE-006", "HANDOFF-011", "SUB-050"],
    profile: "core",
    timeoutMs: 40_000,
    run: (ctx) => scopeMatrix(ctx, "core"),
  }),
  defineCase({
    id: "auth.scope-matrix-identity",
    requirements: ["LINK-017", "LINK-024", "DEVICE-007", "GRANT-008", "ERASE-005"],
    profile: "identity",
    timeoutMs: 40_000,
    run: (ctx) => scopeMatrix(ctx, "identity"),
  }),
  defineCase({
    id: "auth.token-only-in-authorization-bearer",
    requirements: ["AUTH-001", "AUTH-002", "SEC-001"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const call = (entries: [string, string][]) => {
        const metadata = new Metadata();
        for (const [key, value] of entries) metadata.set(key, value);
        return ctx.clients().subjects.getSubject({ name: session.subject }, { metadata });
      };
      // A header that is present but not `Bearer <token>` is an invalid token (AUTH-002);
      // a token anywhere but the authorization header is no token at all (AUTH-001).
      await expectError(call([["authorization", session.token]]), { code: Status.UNAUTHENTICATED, reason: "TOKEN_INVALID" }, "authorization without the Bearer scheme");
      await expectError(call([["authorization", `Basic ${Buffer.from(`x:${session.token}`).toString("base64")}`]]), { code: Status.UNAUTHENTICATED, reason: "TOKEN_INVALID" }, "authorization with the Basic scheme");
      await expectError(call([["authorization", ""]]), { code: Status.UNAUTHENTICATED, reason: "TOKEN_MISSING" }, "an empty authorization header");
      await expectError(call([["access-token", session.token]]), { code: Status.UNAUTHENTICATED, reason: "TOKEN_MISSING" }, "the token in another metadata key");
      await expectError(call([["x-access-token", `Bearer ${session.token}`]]), { code: Status.UNAUTHENTICATED, reason: "TOKEN_MISSING" }, "a bearer header under another key");
    },
  }),
  defineCase({
    id: "auth.token-expiry",
    requirements: ["AUTH-003"],
    profile: "core",
    timeoutMs: 40_000,
    async run(ctx) {
      // The suite's own server keeps long tokens for every other case; in spawn mode a second
      // server is started with short ones (CONTINUITY_ACCESS_TOKEN_SECONDS), so this always runs.
      let clients = ctx.clients;
      let lifetime = ctx.limits.accessTokenSeconds;
      if (lifetime > TOKEN_EXPIRY_WAIT_SECONDS && ctx.canStartSecondServer) {
        const short = await ctx.startSecondServer({ CONTINUITY_ACCESS_TOKEN_SECONDS: String(SHORT_TOKEN_SECONDS) });
        clients = short.clients;
        lifetime = (await short.clients().serverInfo.getServerInfo({})).limits?.accessTokenSeconds ?? lifetime;
      }
      if (lifetime > TOKEN_EXPIRY_WAIT_SECONDS) ctx.skip(`access tokens live ${lifetime} s (the server ignores CONTINUITY_ACCESS_TOKEN_SECONDS, or runs attached); the suite waits out at most ${TOKEN_EXPIRY_WAIT_SECONDS} s`);
      const exchange = await clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.a, accountId: ctx.uniqueId("acct") }), subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "", deviceId: ctx.uniqueId("dev"), deviceDisplayName: "" });
      checkEqual(exchange.expiresIn, lifetime, "ExchangeTokenResponse.expires_in equals Limits.access_token_seconds");
      const session = clients(exchange.accessToken);
      const { stream } = await session.streams.createStream({ parent: exchange.subject, streamId: "", stream: { ...v1.Stream.fromPartial({}), type: "org.example.expiry", encoding: ENCODING.mergePatch, conflictPolicy: POLICY.blind } });
      await session.subjects.getSubject({ name: exchange.subject });
      await new Promise((resolve) => setTimeout(resolve, (lifetime + 1.5) * 1000));
      const expired = { code: Status.UNAUTHENTICATED, reason: "TOKEN_EXPIRED" } as const;
      await expectError(session.subjects.getSubject({ name: exchange.subject }), expired, "a token used after expires_in");
      await expectError((async () => {
        for await (const message of session.streams.getSnapshot({ stream: stream!.name })) return message;
        return undefined;
      })(), expired, "GetSnapshot (server streaming) with an expired token");
      await expectError((async () => {
        for await (const message of session.subscriptions.subscribe({ parent: exchange.subject, cursor: "", heartbeatSeconds: 0 })) return message;
        return undefined;
      })(), expired, "Subscribe with an expired token");
    },
  }),
  defineCase({
    id: "append.check-order",
    requirements: ["APPEND-050", "ERR-010", "AUTH-006"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const ghost = `${session.subject}/streams/does-not-exist`;
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch, policy: POLICY.blind });
      await append(session, stream.name, [[{ op: "add", path: "/a", value: 1 }]], { clientSequence: 1 });
      const order: [string, () => Promise<unknown>, string, Status][] = [
        ["no token + invalid field", () => ctx.clients().streams.appendDeltas({ stream: ghost, deltas: [], clientSequence: 0n }), "TOKEN_MISSING", Status.UNAUTHENTICATED],
        ["invalid field + unknown stream", () => append(session, ghost, [{ a: 1 }], { clientSequence: 0 }), "INVALID_FIELD", Status.INVALID_ARGUMENT],
        ["oversize delta + unknown stream", () => append(session, ghost, [Buffer.alloc(ctx.limits.maxDeltaBytes + 1, 0x20)], { clientSequence: 1 }), "DELTA_TOO_LARGE", Status.RESOURCE_EXHAUSTED],
        ["unknown stream + sequence gap", () => append(session, ghost, [{ a: 1 }], { clientSequence: 9 }), "STREAM_NOT_FOUND", Status.NOT_FOUND],
        // Payload syntax depends on the stream's encoding, so it is judged only once the stream is visible.
        ["malformed payload + unknown stream", () => append(session, ghost, [Buffer.from("{not json")], { clientSequence: 1 }), "STREAM_NOT_FOUND", Status.NOT_FOUND],
        ["malformed payload + sequence gap", () => append(session, stream.name, [Buffer.from("{not json")], { clientSequence: 9 }), "MALFORMED_PAYLOAD", Status.INVALID_ARGUMENT],
        ["sequence gap + stale version", () => append(session, stream.name, [[{ op: "add", path: "/b", value: 1 }]], { clientSequence: 9, expectedVersion: 0 }), "CLIENT_SEQUENCE_GAP", Status.FAILED_PRECONDITION],
        ["stale version + inapplicable patch", () => append(session, stream.name, [[{ op: "remove", path: "/zzz" }]], { clientSequence: 2, expectedVersion: 0 }), "VERSION_CONFLICT", Status.ABORTED],
      ];
      for (const [what, call, reason, code] of order) await expectError(call, { code, reason }, `append with ${what}`);
      const unbound = await ctx.session({ accountId: session.accountId, deviceId: null });
      await expectError(append(unbound, stream.name, [[{ op: "add", path: "/z", value: 1 }]], { clientSequence: 9 }), { code: Status.FAILED_PRECONDITION, reason: "DEVICE_REQUIRED" }, "append with an unbound token and a sequence gap");
    },
  }),
  defineCase({
    id: "grant.read-only-access-everywhere",
    requirements: ["ISO-011", "APPEND-001", "STREAM-021", "COMPACT-005", "SNAP-018", "RESTORE-006", "CKPT-009"],
    profile: "identity",
    async run(ctx) {
      const { owner, reader } = await readGrant(ctx);
      const stream = await createStream(ctx, owner, { encoding: ENCODING.opaque, type: "org.example.read-only" });
      const receipt = await append(owner, stream.name, [Buffer.from("one")], { clientSequence: 1 });
      await owner.clients.consent.createGrant({ parent: owner.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${reader.platform.id}`, streamType: "org.example.read-only", access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } });
      await reader.clients.streams.getStream({ name: stream.name });
      checkEqual((await listAllDeltas(reader, stream.name)).length, 1, "the grantee lists the deltas");
      await downloadSnapshot(reader, stream.name);
      const readOnly = { code: Status.PERMISSION_DENIED, reason: "GRANT_READ_ONLY" } as const;
      await expectError(append(reader, stream.name, [Buffer.from("x")], { clientSequence: 1 }), readOnly, "AppendDeltas under a READ grant");
      await expectError(reader.clients.streams.compactStream({ stream: stream.name, horizonVersion: 1n }), readOnly, "CompactStream under a READ grant");
      const state = Buffer.from("state");
      const upload = reader.clients.streams.uploadSnapshot((async function* () {
        yield { part: { $case: "header" as const, value: { stream: stream.name, streamUid: stream.uid, version: 1n, headHash: receipt.headHash, encoding: ENCODING.opaque, sizeBytes: BigInt(state.length), snapshotHash: Buffer.from(snapshotHash({ streamUid: stream.uid, version: 1n, headHash: receipt.headHash, encoding: ENCODING.opaque, state })) } } };
        yield { part: { $case: "data" as const, value: state } };
      })());
      await expectError(upload, readOnly, "UploadSnapshot under a READ grant");
      const json = await createStream(ctx, owner, { type: "org.example.read-only" });
      await append(owner, json.name, [{ a: 1 }], { clientSequence: 1 });
      const { checkpoint } = await reader.clients.checkpoints.createCheckpoint({ parent: reader.subject, checkpointId: "", streams: [{ stream: json.name }], resume: undefined });
      await append(owner, json.name, [{ a: 2 }], { clientSequence: 2 });
      await expectError(reader.clients.checkpoints.restoreCheckpoint({ name: checkpoint!.name }), readOnly, "RestoreCheckpoint under a READ grant");
      await expectError(reader.clients.streams.deleteStream({ name: stream.name }), { code: Status.PERMISSION_DENIED, reason: "NOT_STREAM_OWNER" }, "DeleteStream under a READ grant");
      const hidden = await createStream(ctx, owner, { type: "org.example.hidden" });
      await expectError(reader.clients.checkpoints.createCheckpoint({ parent: reader.subject, checkpointId: "", streams: [{ stream: hidden.name }], resume: undefined }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "a checkpoint naming an unreadable stream");
      checkEqual((await listAllDeltas(owner, stream.name)).length, 1, "nothing the grantee attempted was written");
    },
  }),
  defineCase({
    id: "isolation.unreadable-checkpoints-and-handoffs",
    requirements: ["ISO-012", "CKPT-021", "HANDOFF-012"],
    profile: "identity",
    async run(ctx) {
      const { owner, reader } = await readGrant(ctx);
      const visible = await createStream(ctx, owner, { type: "org.example.visible" });
      const hidden = await createStream(ctx, owner, { type: "org.example.hidden" });
      await owner.clients.consent.createGrant({ parent: owner.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${reader.platform.id}`, streamType: "org.example.visible", access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } });
      const make = async (streams: string[]) => (await owner.clients.checkpoints.createCheckpoint({ parent: owner.subject, checkpointId: ctx.uniqueId("cp"), streams: streams.map((stream) => ({ stream })), resume: undefined })).checkpoint!;
      const first = await make([visible.name]);
      const mixed = await make([visible.name, hidden.name]);
      const last = await make([visible.name]);
      const listed = await owner.clients.checkpoints.listCheckpoints({ parent: owner.subject, pageSize: 0, pageToken: "" });
      checkEqual(listed.checkpoints.map((c) => c.name), [last.name, mixed.name, first.name], "the owner's checkpoints, newest first");
      const seen = await reader.clients.checkpoints.listCheckpoints({ parent: reader.subject, pageSize: 0, pageToken: "" });
      checkEqual(seen.checkpoints.map((c) => c.name), [last.name, first.name], "the grantee lists only checkpoints it may fully read");
      await expectError(reader.clients.checkpoints.getCheckpoint({ name: mixed.name }), { code: Status.NOT_FOUND, reason: "CHECKPOINT_NOT_FOUND" }, "GetCheckpoint naming an unreadable stream");
      await expectError(reader.clients.checkpoints.offerHandoff({ parent: reader.subject, checkpoint: mixed.name, targetDevice: "", ttlSeconds: 0 }), { code: Status.NOT_FOUND, reason: "CHECKPOINT_NOT_FOUND" }, "offering an unreadable checkpoint");
      await expectError(owner.clients.checkpoints.offerHandoff({ parent: owner.subject, checkpoint: `${owner.subject}/checkpoints/never-made`, targetDevice: "", ttlSeconds: 0 }), { code: Status.NOT_FOUND, reason: "CHECKPOINT_NOT_FOUND" }, "offering a checkpoint that does not exist");
      const { handoff } = await owner.clients.checkpoints.offerHandoff({ parent: owner.subject, checkpoint: mixed.name, targetDevice: "", ttlSeconds: 0 });
      await expectError(reader.clients.checkpoints.getHandoff({ name: handoff!.name }), { code: Status.NOT_FOUND, reason: "HANDOFF_NOT_FOUND" }, "GetHandoff of an unreadable checkpoint");
    },
  }),
];
