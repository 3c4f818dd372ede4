import { ClientError } from "nice-grpc-common";
import { v1 } from "../harness/clients.js";
import type { CaseContext, Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, checkError, expectError, fail, Status } from "../harness/expect.js";
import { append, createStream, listAllDeltas } from "../harness/streams.js";
import { openSubscription } from "../harness/subscription.js";
import { linkAccount } from "../harness/linking.js";

const LINK_CODE = /^[ABCDEFGHJKMNPQRSTVWXYZ23456789]{10}$/;

/** Links a fresh account of `platform` to `owner`'s subject through a link code. */
async function linkPlatform(ctx: CaseContext, owner: Session, platform = ctx.platforms.b): Promise<Session> {
  const session = await linkAccount(ctx, owner, platform);
  checkEqual(session.subject, owner.subject, "an account linked by a link code exchanges into the code's subject");
  return session;
}

function grantRequest(owner: Session, grantee: Session, streamType: string, access: number) {
  return { parent: owner.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${grantee.platform.id}`, streamType, access, createTime: undefined, revokeTime: undefined } };
}

/** Link codes, account links, devices, consent grants and erasure. */
export const IDENTITY_CASES = [
  defineCase({
    id: "link.code-redeemed-once",
    requirements: ["LINK-010", "LINK-011", "LINK-012", "LINK-013", "LINK-014", "LINK-017"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const created = await owner.clients.subjects.createLinkCode({ parent: owner.subject });
      check(LINK_CODE.test(created.code), `link code ${created.code} must be 10 characters of the link alphabet`);
      check(created.expireTime !== undefined && created.expireTime.getTime() - Date.now() <= 601_000, "expire_time at most 600 s ahead");
      const typed = `${created.code.slice(0, 5).toLowerCase()}-${created.code.slice(5)} `;
      const accountId = ctx.uniqueId("b-acct");
      const redeemed = await ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.b, accountId }), code: typed });
      checkEqual([redeemed.accountLink?.platform, redeemed.accountLink?.accountId], [`platforms/${ctx.platforms.b.id}`, accountId], "the new account link");
      check(redeemed.accountLink?.name.startsWith(`${owner.subject}/accountLinks/`), "the link belongs to the code's subject");
      const joined = await ctx.session({ platform: ctx.platforms.b, accountId });
      checkEqual([joined.subject, joined.exchange.subjectCreated], [owner.subject, false], "exchange after redemption");
      const again = await expectError(ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.c, accountId: ctx.uniqueId("c") }), code: created.code }), { code: Status.NOT_FOUND, reason: "LINK_CODE_INVALID" }, "second redemption of a code");
      const never = await expectError(ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.c, accountId: ctx.uniqueId("c") }), code: "ABCDEFGHJK" }), { code: Status.NOT_FOUND, reason: "LINK_CODE_INVALID" }, "redemption of a code never issued");
      checkEqual(again.info.metadata, never.info.metadata, "a used code and an unknown code are told apart by nothing");
    },
  }),
  defineCase({
    id: "link.account-links-and-removal",
    requirements: ["LINK-020", "LINK-021", "LINK-022", "LINK-023", "AUTH-004"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const b = await linkPlatform(ctx, owner);
      const { accountLinks } = await owner.clients.subjects.listAccountLinks({ parent: owner.subject, pageSize: 0, pageToken: "" });
      checkEqual(accountLinks.map((l) => [l.platform, l.accountId]), [[`platforms/${owner.platform.id}`, owner.accountId], [`platforms/${b.platform.id}`, b.accountId]], "account links, oldest first");
      await owner.clients.subjects.deleteAccountLink({ name: accountLinks[1]!.name });
      await expectError(b.clients.subjects.getSubject({ name: b.subject }), { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "a token of an unlinked platform");
      const fresh = await ctx.session({ platform: b.platform, accountId: b.accountId });
      check(fresh.subject !== owner.subject && fresh.exchange.subjectCreated, "an unlinked account exchanges into a new subject");
      await expectError(owner.clients.subjects.deleteAccountLink({ name: accountLinks[0]!.name }), { code: Status.FAILED_PRECONDITION, reason: "LAST_ACCOUNT_LINK" }, "removing the last account link");
      await expectError(owner.clients.subjects.deleteAccountLink({ name: `${owner.subject}/accountLinks/no-such-link` }), { code: Status.NOT_FOUND, reason: "ACCOUNT_LINK_NOT_FOUND" }, "removing an unknown account link");
    },
  }),
  defineCase({
    id: "device.revocation-ends-tokens-and-subscriptions",
    requirements: ["DEVICE-003", "DEVICE-004", "DEVICE-005", "DEVICE-006", "TOKEN-013", "AUTH-004", "SUB-042"],
    profile: "identity",
    async run(ctx) {
      const phone = await ctx.session();
      const laptop = await ctx.session({ accountId: phone.accountId });
      const stream = await createStream(ctx, phone);
      const sub = openSubscription(laptop, "", ctx.signal);
      try {
        await sub.expectEvent("ready");
        const revoked = await phone.clients.devices.revokeDevice({ name: laptop.device });
        checkEqual(revoked.device?.state, v1.DeviceState.DEVICE_STATE_REVOKED, "RevokeDevice returns the revoked device");
        await expectError(laptop.clients.streams.getStream({ name: stream.name }), { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "the revoked device's token on its next call");
        await expectError(append(laptop, stream.name, [{ a: 1 }], { clientSequence: 1 }), { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "an append from the revoked device");
        checkError(await sub.ended(), { code: Status.PERMISSION_DENIED, reason: "DEVICE_REVOKED" }, "the revoked device's live subscription");
      } finally {
        sub.close();
      }
      await expectError(ctx.session({ accountId: phone.accountId, deviceId: laptop.deviceId }), { code: Status.PERMISSION_DENIED, reason: "DEVICE_REVOKED" }, "an exchange naming the revoked device");
      const again = await phone.clients.devices.revokeDevice({ name: laptop.device });
      const { devices } = await phone.clients.devices.listDevices({ parent: phone.subject, pageSize: 0, pageToken: "" });
      checkEqual(devices.map((d) => [d.name, d.state]), [[phone.device, v1.DeviceState.DEVICE_STATE_ACTIVE], [laptop.device, v1.DeviceState.DEVICE_STATE_REVOKED]], "devices, oldest first, revoked included");
      checkEqual(again.device?.revokeTime, devices[1]!.revokeTime, "revoking twice keeps the first revoke_time");
      await expectError(phone.clients.devices.revokeDevice({ name: `${phone.subject}/devices/never-seen` }), { code: Status.NOT_FOUND, reason: "DEVICE_NOT_FOUND" }, "revoking an unknown device");
      checkEqual((await listAllDeltas(phone, stream.name)).length, 0, "nothing appended by the revoked device");
    },
  }),
  defineCase({
    id: "auth.revocation-after-remembered-use",
    requirements: ["AUTH-007", "AUTH-004", "GRANT-003"],
    profile: "identity",
    async run(ctx) {
      // Each token makes successful calls right before its revocation, so that whatever a
      // server remembers about it (the verified token, its device, link and grants) is warm.
      const owner = await ctx.session();
      const laptop = await ctx.session({ accountId: owner.accountId });
      const stream = await createStream(ctx, owner, { type: "org.example.remembered" });
      for (let i = 0; i < 3; i++) await laptop.clients.streams.getStream({ name: stream.name });
      await owner.clients.devices.revokeDevice({ name: laptop.device });
      await expectError(laptop.clients.streams.getStream({ name: stream.name }), { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "a device token used just before its device was revoked");

      const reader = await linkPlatform(ctx, owner);
      await expectError(reader.clients.streams.getStream({ name: stream.name }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "the stream before any grant, read until just before the grant");
      const { grant } = await owner.clients.consent.createGrant(grantRequest(owner, reader, "org.example.remembered", v1.GrantAccess.GRANT_ACCESS_READ));
      for (let i = 0; i < 3; i++) await reader.clients.streams.getStream({ name: stream.name });
      await owner.clients.consent.revokeGrant({ name: grant!.name });
      await expectError(reader.clients.streams.getStream({ name: stream.name }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "a stream read just before its grant was revoked");
      await owner.clients.consent.createGrant(grantRequest(owner, reader, "org.example.remembered", v1.GrantAccess.GRANT_ACCESS_READ));
      checkEqual((await reader.clients.streams.getStream({ name: stream.name })).stream?.name, stream.name, "the stream right after a new grant");

      for (let i = 0; i < 3; i++) await reader.clients.subjects.getSubject({ name: reader.subject });
      const { accountLinks } = await owner.clients.subjects.listAccountLinks({ parent: owner.subject, pageSize: 0, pageToken: "" });
      const readerLink = accountLinks.find((l) => l.platform === `platforms/${reader.platform.id}`);
      check(readerLink !== undefined, "the linked platform's account link is listed");
      await owner.clients.subjects.deleteAccountLink({ name: readerLink!.name });
      await expectError(reader.clients.subjects.getSubject({ name: reader.subject }), { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "a token used just before its account link was deleted");

      for (let i = 0; i < 3; i++) await owner.clients.subjects.getSubject({ name: owner.subject });
      await owner.clients.subjects.deleteSubject({ name: owner.subject });
      await expectError(owner.clients.subjects.getSubject({ name: owner.subject }), { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "a token used just before its subject was erased");
    },
  }),
  defineCase({
    id: "grant.read-grant-then-revocation-ends-subscription",
    requirements: ["GRANT-001", "GRANT-003", "GRANT-006", "ISO-010", "ISO-011", "ISO-013", "SUB-014", "SUB-040", "SUB-041"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const reader = await linkPlatform(ctx, owner);
      const shared = await createStream(ctx, owner, { type: "org.example.shared" });
      const privateStream = await createStream(ctx, owner, { type: "org.example.private" });
      await append(owner, shared.name, [{ v: 1 }], { clientSequence: 1 });
      await expectError(reader.clients.streams.getStream({ name: shared.name }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "another platform's stream before any grant");
      const { grant } = await owner.clients.consent.createGrant(grantRequest(owner, reader, "org.example.shared", v1.GrantAccess.GRANT_ACCESS_READ));
      checkEqual([grant?.grantorPlatform, grant?.granteePlatform, grant?.access], [`platforms/${owner.platform.id}`, `platforms/${reader.platform.id}`, v1.GrantAccess.GRANT_ACCESS_READ], "the created grant");
      const listed = await reader.clients.streams.listStreams({ parent: reader.subject, pageSize: 0, pageToken: "", type: "" });
      checkEqual(listed.streams.map((s) => s.name), [shared.name], "streams a READ grant makes visible");
      await expectError(reader.clients.streams.getStream({ name: privateStream.name }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "a stream of a type the grant does not cover");
      await expectError(append(reader, shared.name, [{ v: 2 }], { clientSequence: 1 }), { code: Status.PERMISSION_DENIED, reason: "GRANT_READ_ONLY" }, "an append under a READ grant");
      const sub = openSubscription(reader, "", ctx.signal);
      try {
        await sub.expectEvent("ready");
        await append(owner, privateStream.name, [{ hidden: true }], { clientSequence: 1 });
        await append(owner, shared.name, [{ v: 2 }], { clientSequence: 2 });
        const event = await sub.expectEvent("deltasAppended");
        checkEqual(event.event.value.deltas.map((d) => d.stream), [shared.name], "the grantee sees only the granted stream's events");
        await owner.clients.consent.revokeGrant({ name: grant!.name });
        const revoked = await sub.expectEvent("accessRevoked");
        checkEqual(revoked.event.value.grant, grant!.name, "AccessRevoked.grant");
        checkError(await sub.ended(), { code: Status.PERMISSION_DENIED, reason: "GRANT_REVOKED" }, "the grantee's subscription after revocation");
      } finally {
        sub.close();
      }
      await expectError(reader.clients.streams.getStream({ name: shared.name }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "the grantee's next read after revocation");
    },
  }),
  defineCase({
    id: "grant.read-write-and-validation",
    requirements: ["GRANT-001", "GRANT-002", "GRANT-003", "GRANT-004", "GRANT-005", "GRANT-007", "STREAM-021"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const writer = await linkPlatform(ctx, owner);
      const stream = await createStream(ctx, owner, { type: "org.example.cart" });
      await expectError(owner.clients.consent.createGrant(grantRequest(owner, owner, "*", v1.GrantAccess.GRANT_ACCESS_READ)), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD" }, "a grant to the caller's own platform");
      await expectError(owner.clients.consent.createGrant(grantRequest(owner, writer, "*", v1.GrantAccess.GRANT_ACCESS_UNSPECIFIED)), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD" }, "a grant with unspecified access");
      const unlinked = { ...writer, platform: ctx.platforms.c };
      await expectError(owner.clients.consent.createGrant(grantRequest(owner, unlinked, "*", v1.GrantAccess.GRANT_ACCESS_READ)), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD" }, "a grant to a platform not linked to the subject");
      const impersonated = grantRequest(owner, writer, "*", v1.GrantAccess.GRANT_ACCESS_READ_WRITE);
      await expectError(owner.clients.consent.createGrant({ ...impersonated, grant: { ...impersonated.grant!, grantorPlatform: `platforms/${writer.platform.id}` } }), { code: Status.PERMISSION_DENIED, reason: "NOT_GRANTOR" }, "a grant naming another platform as grantor");
      const { grant } = await owner.clients.consent.createGrant(grantRequest(owner, writer, "*", v1.GrantAccess.GRANT_ACCESS_READ_WRITE));
      const later = await createStream(ctx, owner, { type: "org.example.later" });
      await append(writer, stream.name, [{ item: "tea" }], { clientSequence: 1 });
      await append(writer, later.name, [{ item: "milk" }], { clientSequence: 1 });
      await expectError(writer.clients.streams.deleteStream({ name: later.name }), { code: Status.PERMISSION_DENIED, reason: "NOT_STREAM_OWNER" }, "DeleteStream under a READ_WRITE grant");
      checkEqual((await owner.clients.streams.getStream({ name: later.name })).stream?.headVersion, 1n, "the stream after a refused delete");
      const own = await createStream(ctx, writer, { type: "org.example.writer-own" });
      await expectError(owner.clients.streams.getStream({ name: own.name }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "a grant gives nothing back to the grantor");
      const mine = await owner.clients.consent.listGrants({ parent: owner.subject, pageSize: 0, pageToken: "" });
      checkEqual(mine.grants.map((g) => g.name), [grant!.name], "grants the grantor lists");
      const held = await writer.clients.consent.listGrants({ parent: writer.subject, pageSize: 0, pageToken: "" });
      checkEqual(held.grants.map((g) => g.name), [grant!.name], "grants the grantee lists");
      await expectError(owner.clients.consent.revokeGrant({ name: `${owner.subject}/grants/no-such-grant` }), { code: Status.NOT_FOUND, reason: "GRANT_NOT_FOUND" }, "revoking an unknown grant");
      const revoked = await writer.clients.consent.revokeGrant({ name: grant!.name });
      check(revoked.grant?.revokeTime !== undefined, "the grantee may revoke, and revoke_time is set");
      await owner.clients.consent.revokeGrant({ name: grant!.name });
      await expectError(append(writer, stream.name, [{ item: "sugar" }], { clientSequence: 2 }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "an append after the grant was revoked");
    },
  }),
  defineCase({
    id: "erase.subject-erased-everywhere",
    requirements: ["ERASE-001", "ERASE-002", "ERASE-003", "ERASE-004", "SUB-043"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const bystander = await ctx.session();
      const stream = await createStream(ctx, owner);
      await append(owner, stream.name, [{ private: "data" }], { clientSequence: 1 });
      const bystanderStream = await createStream(ctx, bystander);
      const { code } = await owner.clients.subjects.createLinkCode({ parent: owner.subject });
      const sub = openSubscription(owner, "", ctx.signal);
      try {
        await sub.expectEvent("ready");
        await owner.clients.subjects.deleteSubject({ name: owner.subject });
        checkError(await sub.ended(), { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "a live subscription of the erased subject");
      } finally {
        sub.close();
      }
      await expectError(owner.clients.streams.getStream({ name: stream.name }), { code: Status.UNAUTHENTICATED, reason: "TOKEN_REVOKED" }, "a token of the erased subject");
      await expectError(ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.b, accountId: ctx.uniqueId("b") }), code }), { code: Status.NOT_FOUND, reason: "LINK_CODE_INVALID" }, "a link code of the erased subject");
      const reborn = await ctx.session({ accountId: owner.accountId });
      check(reborn.subject !== owner.subject && reborn.exchange.subjectCreated, "the account exchanges into a new subject after erasure");
      const { streams } = await reborn.clients.streams.listStreams({ parent: reborn.subject, pageSize: 0, pageToken: "", type: "" });
      checkEqual(streams.length, 0, "streams of the new subject");
      const { devices } = await reborn.clients.devices.listDevices({ parent: reborn.subject, pageSize: 0, pageToken: "" });
      checkEqual(devices.map((d) => d.name), [reborn.device], "devices of the new subject");
      await expectError(reborn.clients.streams.getStream({ name: stream.name }), { code: Status.NOT_FOUND, reason: "SUBJECT_NOT_FOUND" }, "the erased subject's stream name");
      const { stream: intact } = await bystander.clients.streams.getStream({ name: bystanderStream.name });
      if (intact === undefined) fail("another subject's stream must survive an erasure");
    },
  }),
  defineCase({
    id: "link.failed-redemptions-consume-nothing",
    requirements: ["LINK-015", "LINK-016", "LINK-018", "LINK-001"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const { subject } = await owner.clients.subjects.getSubject({ name: owner.subject });
      checkEqual(subject?.name, owner.subject, "GetSubject of the token's subject");
      check(subject?.createTime !== undefined, "Subject.create_time must be set");
      const { code } = await owner.clients.subjects.createLinkCode({ parent: owner.subject });
      const now = Math.floor(Date.now() / 1000);
      const accountId = ctx.uniqueId("joiner");
      await expectError(ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.b, accountId, issuedAt: now - 400, expiresAt: now - 100 }), code }), { code: Status.UNAUTHENTICATED, reason: "ASSERTION_INVALID" }, "redemption with an expired assertion");
      await expectError(ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.b, accountId, typ: "JWT" }), code }), { code: Status.UNAUTHENTICATED, reason: "ASSERTION_INVALID" }, "redemption with an assertion of the wrong typ");
      const elsewhere = await ctx.session({ platform: ctx.platforms.b });
      await expectError(ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.b, accountId: elsewhere.accountId }), code }), { code: Status.FAILED_PRECONDITION, reason: "ACCOUNT_LINKED_ELSEWHERE" }, "redemption by an account linked to another subject");
      const { accountLinks: before } = await owner.clients.subjects.listAccountLinks({ parent: owner.subject, pageSize: 0, pageToken: "" });
      checkEqual(before.length, 1, "account links after failed redemptions");
      await ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.b, accountId }), code });
      const joined = await ctx.session({ platform: ctx.platforms.b, accountId });
      checkEqual(joined.subject, owner.subject, "the code still worked after failed redemptions");
    },
  }),
  defineCase({
    id: "link.failed-redemptions-limited",
    requirements: ["LINK-019"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const { code } = await owner.clients.subjects.createLinkCode({ parent: owner.subject });
      const guesser = await ctx.mintAssertion({ platform: ctx.platforms.b, accountId: ctx.uniqueId("guesser") });
      const limited = { code: Status.RESOURCE_EXHAUSTED, reason: "LINK_CODE_ATTEMPTS_EXCEEDED", metadataKeys: ["retryAfterSeconds"] };
      // Ten failures at most are let through; a stricter server may refuse earlier.
      for (let attempt = 1; attempt <= 10; attempt++) {
        const error = await ctx.clients().subjects.redeemLinkCode({ subjectToken: guesser, code: attempt % 2 === 0 ? "QQQQQ-QQQQQ" : "no" }).then(
          () => fail(`redemption ${attempt} of a wrong code must fail`),
          (e: unknown) => e,
        );
        const isLimited = error instanceof ClientError && error.code === Status.RESOURCE_EXHAUSTED;
        checkError(error, isLimited ? limited : { code: Status.NOT_FOUND, reason: "LINK_CODE_INVALID" }, `failed redemption ${attempt} of one account`);
        if (isLimited) break;
      }
      const refused = await expectError(ctx.clients().subjects.redeemLinkCode({ subjectToken: guesser, code }), limited, "a valid code from an account that failed 10 times");
      const retryAfter = refused.info.metadata.retryAfterSeconds ?? "";
      check(/^[1-9][0-9]*$/.test(retryAfter) && Number(retryAfter) <= 600, `retryAfterSeconds must be whole seconds in 1..600, got "${retryAfter}"`);
      // The refusal did not look at the code: it still links another platform's account.
      const accountId = ctx.uniqueId("joiner");
      await ctx.clients().subjects.redeemLinkCode({ subjectToken: await ctx.mintAssertion({ platform: ctx.platforms.c, accountId }), code });
      const joined = await ctx.session({ platform: ctx.platforms.c, accountId });
      checkEqual(joined.subject, owner.subject, "the code refused to a limited account still works");
    },
  }),
  defineCase({
    id: "link.codes-are-random",
    requirements: ["SEC-021", "LINK-010"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const codes: string[] = [];
      for (let i = 0; i < 24; i++) codes.push((await owner.clients.subjects.createLinkCode({ parent: owner.subject })).code);
      for (const code of codes) check(LINK_CODE.test(code), `link code ${code} must use the link alphabet`);
      checkEqual(new Set(codes).size, codes.length, "link codes drawn in a row are distinct");
      // 24 codes x 10 characters: a uniform generator uses well over half of the 30 symbols
      // and never repeats one position across every code.
      const symbols = new Set(codes.join(""));
      check(symbols.size >= 20, `24 codes used only ${symbols.size} distinct symbols`);
      for (let position = 0; position < 10; position++) {
        check(new Set(codes.map((c) => c[position])).size > 1, `every code has the same character at position ${position}`);
      }
    },
  }),
  defineCase({
    id: "device.registration-rules",
    requirements: ["DEVICE-001", "DEVICE-002", "DEVICE-008", "TOKEN-012"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const deviceId = ctx.uniqueId("tv");
      const { device } = await owner.clients.devices.registerDevice({ parent: owner.subject, deviceId, displayName: "Living room" });
      checkEqual([device?.name, device?.displayName, device?.platform, device?.state], [`${owner.subject}/devices/${deviceId}`, "Living room", `platforms/${owner.platform.id}`, v1.DeviceState.DEVICE_STATE_ACTIVE], "a registered device");
      const { device: renamed } = await owner.clients.devices.registerDevice({ parent: owner.subject, deviceId, displayName: "Bedroom" });
      checkEqual(renamed?.displayName, "Bedroom", "registering an active device again updates its display name");
      await expectError(owner.clients.devices.registerDevice({ parent: owner.subject, deviceId: ctx.uniqueId("d"), displayName: "x".repeat(101) }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD" }, "a display name of 101 characters");
      await owner.clients.devices.revokeDevice({ name: device!.name });
      await expectError(owner.clients.devices.registerDevice({ parent: owner.subject, deviceId, displayName: "back" }), { code: Status.PERMISSION_DENIED, reason: "DEVICE_REVOKED" }, "registering a revoked device again");
      const minted = await ctx.session({ accountId: owner.accountId });
      const { devices } = await owner.clients.devices.listDevices({ parent: owner.subject, pageSize: 0, pageToken: "" });
      const listed = devices.find((d) => d.name === minted.device);
      checkEqual([listed?.state, listed?.displayName], [v1.DeviceState.DEVICE_STATE_ACTIVE, `conformance ${minted.deviceId}`], "a device registered by its first exchange");
    },
  }),
  defineCase({
    id: "device.other-platforms-device-refused",
    requirements: ["DEVICE-002", "TOKEN-013"],
    profile: "identity",
    async run(ctx) {
      const owner = await ctx.session();
      const deviceId = ctx.uniqueId("tv");
      await owner.clients.devices.registerDevice({ parent: owner.subject, deviceId, displayName: "Living room" });
      const other = await linkAccount(ctx, owner, ctx.platforms.b, "b");
      await expectError(other.clients.devices.registerDevice({ parent: other.subject, deviceId, displayName: "mine now" }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["device_id"] }, "registering another platform's device id");
      await expectError(ctx.session({ platform: ctx.platforms.b, accountId: other.accountId, deviceId }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["device_id"] }, "an exchange naming another platform's device");
      const { devices } = await owner.clients.devices.listDevices({ parent: owner.subject, pageSize: 0, pageToken: "" });
      checkEqual(devices.find((d) => d.name === `${owner.subject}/devices/${deviceId}`)?.displayName, "Living room", "the device is unchanged");
    },
  }),
  defineCase({
    id: "link.no-automatic-linking",
    requirements: ["LINK-002"],
    profile: "identity",
    async run(ctx) {
      // The same account id (think: the same e-mail address) on two platforms stays two people
      // until the person joins them with a link code.
      const accountId = ctx.uniqueId("ana-example-org");
      const onA = await ctx.session({ platform: ctx.platforms.a, accountId });
      const onB = await ctx.session({ platform: ctx.platforms.b, accountId });
      check(onA.subject !== onB.subject, "the same account id on another platform must not join the subject without a link code");
      const { accountLinks } = await onA.clients.subjects.listAccountLinks({ parent: onA.subject, pageSize: 0, pageToken: "" });
      checkEqual(accountLinks.map((l) => l.platform), [`platforms/${ctx.platforms.a.id}`], "account links of the first subject");
    },
  }),
];
