import { generateKeyPair, SignJWT } from "jose";
import { Metadata } from "nice-grpc";
import { TOKEN_EXCHANGE, type CaseContext } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, expectError, Status, type CheckedError } from "../harness/expect.js";
import { append, createStream, listAllDeltas, verifyStreamChain } from "../harness/streams.js";
import { AUTHENTICATED_PROBES, lastSegment, namesIn, neverMintedTargets, type Probe } from "./probes.js";

function claimedProbes(ctx: CaseContext): Probe[] {
  return AUTHENTICATED_PROBES.filter((probe) => ctx.claimedProfiles.includes(probe.profile));
}

/** A token with the same header and claims as `token`, signed with a key the server never saw. */
async function forge(token: string): Promise<string> {
  const [header, payload] = token.split(".");
  const { privateKey } = await generateKeyPair("ES256");
  const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
  const protectedHeader = JSON.parse(Buffer.from(header ?? "", "base64url").toString("utf8")) as { alg: string; [key: string]: unknown };
  return new SignJWT(claims).setProtectedHeader({ ...protectedHeader, alg: "ES256" }).sign(privateKey);
}

/** The same claims with `alg: none` and no signature (RFC 8725 §2.1). */
function unsigned(token: string): string {
  const [, payload] = token.split(".");
  const header = Buffer.from(JSON.stringify({ alg: "none", typ: "at+jwt" })).toString("base64url");
  return `${header}.${payload}.`;
}

async function exchange(ctx: CaseContext, assertion: string, overrides: { scope?: string; grantType?: string; subjectTokenType?: string; deviceId?: string } = {}) {
  return ctx.clients().tokens.exchangeToken({
    grantType: overrides.grantType ?? TOKEN_EXCHANGE.grantType,
    subjectToken: assertion,
    subjectTokenType: overrides.subjectTokenType ?? TOKEN_EXCHANGE.subjectTokenType,
    scope: overrides.scope ?? "",
    deviceId: overrides.deviceId ?? ctx.uniqueId("dev"),
    deviceDisplayName: "",
  });
}

/** Authentication, token exchange, scopes and isolation between subjects. */
export const AUTH_CASES = [
  defineCase({
    id: "auth.every-method-rejects-missing-and-bad-tokens",
    requirements: ["AUTH-001", "AUTH-002", "AUTH-005", "AUTH-006", "ERR-001", "ERR-002", "ERR-006"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const targets = namesIn(session.subject, { stream: "s", checkpoint: "c", handoff: "h", device: session.deviceId, grant: "g", accountLink: "l" });
      const assertion = await ctx.mintAssertion({ platform: ctx.platforms.a, accountId: session.accountId });
      // Change one character in the middle of the signature (the last base64url character may
      // carry padding bits a verifier ignores), always to a different character.
      const at = session.token.lastIndexOf(".") + Math.floor((session.token.length - session.token.lastIndexOf(".")) / 2);
      const flipped = `${session.token.slice(0, at)}${session.token[at] === "A" ? "B" : "A"}${session.token.slice(at + 1)}`;
      const badTokens: [string, string][] = [
        ["garbage token", "not-a-jwt"],
        ["token re-signed with a foreign key", await forge(session.token)],
        ["token with alg none", unsigned(session.token)],
        ["token with an altered signature", flipped],
        ["platform assertion used as a bearer token", assertion],
      ];
      for (const probe of claimedProbes(ctx)) {
        await expectError(probe.call(ctx.clients(), targets), { code: Status.UNAUTHENTICATED, reason: "TOKEN_MISSING" }, `${probe.method} without a token`);
        for (const [what, token] of badTokens) {
          await expectError(probe.call(ctx.clients(token), targets), { code: Status.UNAUTHENTICATED, reason: "TOKEN_INVALID" }, `${probe.method} with a ${what}`);
        }
      }
      // Nothing above may have touched the subject.
      const { streams } = await session.clients.streams.listStreams({ parent: session.subject, pageSize: 0, pageToken: "", type: "" });
      checkEqual(streams.length, 0, "streams of the subject after unauthenticated probes");
    },
  }),
  defineCase({
    id: "isolation.other-subject-is-not-found",
    requirements: ["ISO-001", "ISO-002", "ISO-003", "SEC-002", "SUB-051"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const victim = await ctx.session();
      const victimLaptop = await ctx.session({ accountId: victim.accountId });
      const stream = await createStream(ctx, victim);
      await append(victim, stream.name, [{ secret: "victim" }], { clientSequence: 1 });
      const { checkpoint } = await victim.clients.checkpoints.createCheckpoint({ parent: victim.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: undefined });
      const { handoff } = await victim.clients.checkpoints.offerHandoff({ parent: victim.subject, checkpoint: checkpoint!.name, targetDevice: "", ttlSeconds: 0 });
      const real = namesIn(victim.subject, { stream: lastSegment(stream.name), checkpoint: lastSegment(checkpoint!.name), handoff: lastSegment(handoff!.name), device: victimLaptop.deviceId, grant: "g", accountLink: "l" });
      const ghost = neverMintedTargets();
      const attacker = await ctx.session();
      check(attacker.subject !== victim.subject, "a new platform account must get its own subject");
      const probes = [...claimedProbes(ctx)].sort((a, b) => Number(a.destructive) - Number(b.destructive));
      for (const probe of probes) {
        const onReal: CheckedError = await expectError(probe.call(attacker.clients, real), { code: Status.NOT_FOUND, reason: "SUBJECT_NOT_FOUND" }, `${probe.method} naming another subject's resources`);
        const onGhost = await expectError(probe.call(attacker.clients, ghost), { code: Status.NOT_FOUND, reason: "SUBJECT_NOT_FOUND" }, `${probe.method} naming a subject that was never minted`);
        checkEqual(onReal.info.metadata, onGhost.info.metadata, `${probe.method}: ErrorInfo.metadata must not tell an existing subject from a missing one`);
        // Messages may echo the requested name; with the ids masked they must read the same.
        const mask = (text: string) => text.split(real.subject).join("<subject>").split(ghost.subject).join("<subject>").replace(/[a-z0-9-]{8,}/g, "<id>");
        checkEqual(mask(onReal.message), mask(onGhost.message), `${probe.method}: the status message must not tell an existing subject from a missing one`);
      }
      const after = await verifyStreamChain(victim, stream.name);
      checkEqual(after.stream.headVersion, 1n, "the victim's stream after the probes");
      const { handoff: stillOffered } = await victim.clients.checkpoints.getHandoff({ name: handoff!.name });
      checkEqual(stillOffered?.state, handoff!.state, "the victim's handoff after the probes");
      const { streams } = await attacker.clients.streams.listStreams({ parent: attacker.subject, pageSize: 0, pageToken: "", type: "" });
      checkEqual(streams.length, 0, "the attacker's own subject lists none of the victim's streams");
    },
  }),
  defineCase({
    id: "token.assertion-verification",
    requirements: ["TOKEN-001", "TOKEN-002", "TOKEN-003", "TOKEN-004"],
    profile: "core",
    async run(ctx) {
      const { a, b } = ctx.platforms;
      const now = Math.floor(Date.now() / 1000);
      const accountId = ctx.uniqueId("acct");
      const invalid = { code: Status.UNAUTHENTICATED, reason: "ASSERTION_INVALID" } as const;
      await expectError(exchange(ctx, await ctx.mintAssertion({ platform: a, accountId, issuedAt: now - 400, expiresAt: now - 100 })), invalid, "expired assertion");
      await expectError(exchange(ctx, await ctx.mintAssertion({ platform: a, accountId, typ: "JWT" })), invalid, "assertion with typ JWT");
      await expectError(exchange(ctx, await ctx.mintAssertion({ platform: a, accountId, audience: "someone-else" })), invalid, "assertion for another audience");
      await expectError(exchange(ctx, await ctx.mintAssertion({ platform: a, accountId, issuedAt: now, expiresAt: now + 301 })), invalid, "assertion living longer than 300 s");
      await expectError(exchange(ctx, await ctx.mintAssertion({ platform: a, accountId, issuedAt: now + 120, expiresAt: now + 240 })), invalid, "assertion issued in the future");
      await expectError(exchange(ctx, await ctx.mintAssertion({ platform: a, accountId, signingJwk: b.privateJwk })), invalid, "assertion of platform a signed with platform b's key");
      await expectError(exchange(ctx, "header.payload.signature"), invalid, "assertion that is not a JWS");
      const hmac = await new SignJWT({ jti: "x" }).setProtectedHeader({ alg: "HS256", typ: "continuity-assertion+jwt" }).setIssuer(a.id).setAudience(ctx.audience).setSubject(accountId).setIssuedAt(now).setExpirationTime(now + 60).sign(new TextEncoder().encode("a-shared-secret-anyone-could-guess!"));
      await expectError(exchange(ctx, hmac), invalid, "assertion signed with HS256");
      await expectError(exchange(ctx, await ctx.mintAssertion({ platform: a, accountId, issuer: "conformance-unknown" })), { code: Status.UNAUTHENTICATED, reason: "PLATFORM_UNKNOWN" }, "assertion of an unknown platform");
      // The same account with a valid assertion still works: the refusals created nothing.
      const ok = await exchange(ctx, await ctx.mintAssertion({ platform: a, accountId }));
      checkEqual(ok.subjectCreated, true, "the first valid exchange creates the subject");
    },
  }),
  defineCase({
    id: "token.exchange-response-and-subjects",
    requirements: ["TOKEN-010", "TOKEN-011", "TOKEN-012", "TOKEN-015", "GEN-040", "GEN-005"],
    profile: "core",
    async run(ctx) {
      const accountId = ctx.uniqueId("alice-example-com");
      const assertion = () => ctx.mintAssertion({ platform: ctx.platforms.a, accountId });
      await expectError(exchange(ctx, await assertion(), { grantType: "password" }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["grant_type"] }, "grant_type password");
      await expectError(exchange(ctx, await assertion(), { subjectTokenType: "urn:ietf:params:oauth:token-type:saml2" }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["subject_token_type"] }, "another subject_token_type");
      const deviceId = ctx.uniqueId("phone");
      const first = await exchange(ctx, await assertion(), { deviceId });
      checkEqual([first.subjectCreated, first.issuedTokenType, first.tokenType, first.expiresIn], [true, "urn:ietf:params:oauth:token-type:access_token", "Bearer", ctx.limits.accessTokenSeconds], "first exchange response");
      checkEqual(first.platform, `platforms/${ctx.platforms.a.id}`, "ExchangeTokenResponse.platform");
      checkEqual(first.device, `${first.subject}/devices/${deviceId}`, "ExchangeTokenResponse.device");
      checkEqual(first.scope.split(" ").sort(), [...ctx.platforms.a.scopes].sort(), "an empty scope grants every configured scope");
      const subjectId = lastSegment(first.subject);
      check(!subjectId.includes("alice") && !subjectId.includes(ctx.platforms.a.id), `subject id ${subjectId} must not be derived from the account or platform`);
      const second = await exchange(ctx, await assertion());
      checkEqual([second.subject, second.subjectCreated], [first.subject, false], "a later exchange for the same account");
    },
  }),
  defineCase({
    id: "token.scope-never-widened",
    requirements: ["TOKEN-014", "AUTH-010", "AUTH-011"],
    profile: "core",
    async run(ctx) {
      const { c, a } = ctx.platforms;
      const accountId = ctx.uniqueId("acct");
      await expectError(exchange(ctx, await ctx.mintAssertion({ platform: c, accountId }), { scope: "state.read state.write" }), { code: Status.PERMISSION_DENIED, reason: "SCOPE_NOT_ALLOWED", metadata: { scope: "state.write" } }, "read-only platform asking for state.write");
      const readOnly = await ctx.session({ platform: c, accountId });
      checkEqual(readOnly.exchange.scope, "state.read", "scopes granted to a read-only platform");
      await expectError(readOnly.clients.streams.createStream({ parent: readOnly.subject, streamId: "x", stream: undefined }), { code: Status.PERMISSION_DENIED, reason: "SCOPE_INSUFFICIENT", metadata: { scope: "state.write" } }, "CreateStream with a state.read token (scope checked before validation)");
      const narrowed = await ctx.session({ platform: a, scope: "state.read" });
      checkEqual(narrowed.exchange.scope, "state.read", "a narrowed exchange grants exactly what was asked");
      await expectError(narrowed.clients.streams.createStream({ parent: narrowed.subject, streamId: "x", stream: undefined }), { code: Status.PERMISSION_DENIED, reason: "SCOPE_INSUFFICIENT", metadata: { scope: "state.write" } }, "CreateStream with a narrowed token");
      const { streams } = await narrowed.clients.streams.listStreams({ parent: narrowed.subject, pageSize: 0, pageToken: "", type: "" });
      checkEqual(streams.length, 0, "nothing was created by refused calls");
    },
  }),
  defineCase({
    id: "server-info.public-and-complete",
    requirements: ["GEN-001", "GEN-002", "VER-001", "LIMIT-001", "GEN-004"],
    profile: "core",
    async run(ctx) {
      const anonymous = await ctx.clients().serverInfo.getServerInfo({});
      const withGarbage = await ctx.clients("garbage").serverInfo.getServerInfo({});
      checkEqual(withGarbage.profiles, anonymous.profiles, "GetServerInfo with an invalid token");
      check(anonymous.protocolVersions.includes("1"), "protocol_versions must contain 1");
      check(anonymous.profiles.includes(1), "profiles must contain PROFILE_CORE");
      check(!anonymous.profiles.includes(0), "profiles must not contain PROFILE_UNSPECIFIED");
      checkEqual(new Set(anonymous.profiles).size, anonymous.profiles.length, "profiles without duplicates");
      check(anonymous.epoch !== "" && anonymous.assertionAudience !== "", "epoch and assertion_audience must be set");
      const limits = anonymous.limits;
      check(limits !== undefined, "limits must be present");
      check(limits.maxDeltaBytes >= 65536, "max_delta_bytes >= 65536");
      check(limits.maxBatchDeltas >= 100, "max_batch_deltas >= 100");
      check(limits.maxBatchBytes >= limits.maxDeltaBytes, "max_batch_bytes >= max_delta_bytes");
      checkEqual(limits.maxResumePayloadBytes, 4096, "max_resume_payload_bytes");
      check(limits.maxStreamsPerSubject >= 100, "max_streams_per_subject >= 100");
      check(limits.maxCheckpointStreams >= 16, "max_checkpoint_streams >= 16");
      check(limits.maxChunkBytes > 0 && limits.maxPageSize > 0 && limits.maxSnapshotBytes > 0n && limits.accessTokenSeconds > 0, "every limit must be positive");
    },
  }),
  defineCase({
    id: "version.unsupported-protocol-version",
    requirements: ["VER-002", "VER-003"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const metadata = (version: string) => {
        const m = new Metadata();
        m.set("authorization", `Bearer ${session.token}`);
        m.set("continuity-protocol-version", version);
        return m;
      };
      const { protocolVersions } = await ctx.clients().serverInfo.getServerInfo({});
      await session.clients.subjects.getSubject({ name: session.subject }, { metadata: metadata("1") });
      await session.clients.subjects.getSubject({ name: session.subject });
      await expectError(session.clients.subjects.getSubject({ name: session.subject }, { metadata: metadata("999") }), { code: Status.FAILED_PRECONDITION, reason: "PROTOCOL_VERSION_UNSUPPORTED", metadata: { supported: protocolVersions.join(",") } }, "protocol version 999");
    },
  }),
  defineCase({
    id: "general.unclaimed-profile-unimplemented",
    requirements: ["GEN-003"],
    profile: "core",
    async run(ctx) {
      const { profiles } = await ctx.clients().serverInfo.getServerInfo({});
      if (profiles.includes(3)) {
        ctx.note("the server claims portability; nothing to check for an unclaimed profile");
        return;
      }
      await expectError((async () => {
        for await (const item of ctx.clients().portability.exportSubject({ name: "subjects/x" })) return item;
        return undefined;
      })(), { code: Status.UNIMPLEMENTED, reason: "PROFILE_NOT_SUPPORTED", metadata: { profile: "PROFILE_PORTABILITY" } }, "ExportSubject without the portability profile (checked before authentication)");
    },
  }),
];

