import { SignJWT, generateKeyPair } from "jose";
import { Metadata } from "nice-grpc-common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { failure, idOf, startIdentityHarness, subscribe, type IdentityHarness } from "./harness.js";
import { createTestPlatform, unsecuredAssertion } from "../../src/testing/test-platform.js";

const v1 = continuity.v1;
const EXCHANGE = {
  grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
  subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
  scope: "",
  deviceId: "",
  deviceDisplayName: "",
};

let h: IdentityHarness;
let clockOffsetMs = 0;

beforeAll(async () => {
  h = await startIdentityHarness({ now: () => new Date(Date.now() + clockOffsetMs) });
});

afterAll(async () => {
  await h.close();
});

let accountCounter = 0;
/** A fresh account id per use, so tests never share a subject by accident. */
function account(label: string): string {
  accountCounter += 1;
  return `${label}-${accountCounter}`;
}

function streamInput(type: string) {
  return {
    type,
    encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH,
    conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND,
  };
}

describe("TokenService.ExchangeToken", () => {
  it("creates a subject on the first exchange and finds it on the next", async () => {
    const who = account("ana");
    const first = await h.exchange(h.platforms.a, who, { deviceId: "phone-1", displayName: "Ana's phone" });
    expect(first.subjectCreated).toBe(true);
    expect(first.subject).toMatch(/^subjects\/[a-z2-7]{26}$/);
    expect(first.platform).toBe("platforms/course-a");
    expect(first.device).toBe(`${first.subject}/devices/phone-1`);
    expect(first.tokenType).toBe("Bearer");
    expect(first.issuedTokenType).toBe("urn:ietf:params:oauth:token-type:access_token");
    expect(first.expiresIn).toBe(900);
    expect(first.scope).toBe("state.read state.write identity.manage");

    const again = await h.exchange(h.platforms.a, who);
    expect(again.subjectCreated).toBe(false);
    expect(again.subject).toBe(first.subject);
    expect(again.device).toBe("");

    const other = await h.exchange(h.platforms.a, account("ben"));
    expect(other.subject).not.toBe(first.subject);

    const devices = await h.as(first.accessToken).device.listDevices({ parent: first.subject });
    expect(devices.devices.map((d) => [idOf(d.name), d.displayName, d.platform, d.state])).toEqual([
      ["phone-1", "Ana's phone", "platforms/course-a", v1.DeviceState.DEVICE_STATE_ACTIVE],
    ]);
  });

  it("grants exactly the scopes asked for, and refuses scopes beyond the platform's", async () => {
    const narrowed = await h.exchange(h.platforms.a, account("s"), { scope: "state.read" });
    expect(narrowed.scope).toBe("state.read");
    const readerDefault = await h.exchange(h.platforms.readOnly, account("r"));
    expect(readerDefault.scope).toBe("state.read");
    const widened = await failure(h.exchange(h.platforms.readOnly, account("r"), { scope: "state.read state.write" }));
    expect(widened).toMatchObject({ code: "PERMISSION_DENIED", reason: "SCOPE_NOT_ALLOWED", metadata: { scope: "state.write" } });
  });

  it("lists every malformed field at once", async () => {
    const bad = await failure(
      h.clients.token.exchangeToken({
        grantType: "password",
        subjectTokenType: "urn:ietf:params:oauth:token-type:saml2",
        subjectToken: "",
        scope: "state.read admin",
        deviceId: "Phone_1",
        deviceDisplayName: "x".repeat(101),
      }),
    );
    expect(bad.code).toBe("INVALID_ARGUMENT");
    expect(bad.reason).toBe("INVALID_FIELD");
    expect(bad.fields.sort()).toEqual(
      ["device_display_name", "device_id", "grant_type", "scope", "subject_token", "subject_token_type"].sort(),
    );
  });

  describe("refuses bad assertions", () => {
    const cases: [string, () => Promise<string>, string][] = [
      ["a forged signature", async () => h.platforms.a.assertion("x", { key: (await generateKeyPair("ES256")).privateKey }), "ASSERTION_INVALID"],
      ["a wrong typ", async () => h.platforms.a.assertion("x", { header: { typ: "JWT" } }), "ASSERTION_INVALID"],
      ["alg none", async () => {
        const now = Math.floor(Date.now() / 1000);
        return unsecuredAssertion({ iss: "course-a", aud: "continuity", sub: "x", iat: now, exp: now + 60, jti: "n" });
      }, "ASSERTION_INVALID"],
      ["HS256", async () => {
        const now = Math.floor(Date.now() / 1000);
        return new SignJWT({ iss: "course-a", aud: "continuity", sub: "x", iat: now, exp: now + 60, jti: "h" })
          .setProtectedHeader({ alg: "HS256", typ: "continuity-assertion+jwt" })
          .sign(new TextEncoder().encode(JSON.stringify(h.platforms.a.publicJwk)));
      }, "ASSERTION_INVALID"],
      ["a wrong audience", async () => h.platforms.a.assertion("x", { claims: { aud: "another-server" } }), "ASSERTION_INVALID"],
      ["an expired assertion", async () => h.platforms.a.assertion("x", { iatOffset: -400, lifetime: 300 }), "ASSERTION_INVALID"],
      ["a lifetime over 300 s", async () => h.platforms.a.assertion("x", { lifetime: 600 }), "ASSERTION_INVALID"],
      ["no jti", async () => h.platforms.a.assertion("x", { claims: { jti: undefined } }), "ASSERTION_INVALID"],
      ["an unknown issuer", async () => (await createTestPlatform("nobody")).assertion("x"), "PLATFORM_UNKNOWN"],
    ];
    it.each(cases)("%s", async (_label, make, reason) => {
      const refused = await failure(h.clients.token.exchangeToken({ ...EXCHANGE, subjectToken: await make() }));
      expect(refused).toMatchObject({ code: "UNAUTHENTICATED", reason });
    });
  });
});

describe("auth middleware", () => {
  it("answers TOKEN_MISSING, TOKEN_INVALID and TOKEN_EXPIRED", async () => {
    const subject = `subjects/${"a".repeat(26)}`;
    expect(await failure(h.clients.subject.getSubject({ name: subject }))).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "TOKEN_MISSING",
    });
    expect(await failure(h.as("abc.def.ghi").subject.getSubject({ name: subject }))).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "TOKEN_INVALID",
    });
    // A platform assertion is not an access token.
    const assertion = await h.platforms.a.assertion("x");
    expect(await failure(h.as(assertion).subject.getSubject({ name: subject }))).toMatchObject({ reason: "TOKEN_INVALID" });

    const issued = await h.exchange(h.platforms.a, account("exp"));
    clockOffsetMs = 1_000_000;
    try {
      expect(await failure(h.as(issued.accessToken).subject.getSubject({ name: issued.subject }))).toMatchObject({
        code: "UNAUTHENTICATED",
        reason: "TOKEN_EXPIRED",
      });
    } finally {
      clockOffsetMs = 0;
    }
    await expect(h.as(issued.accessToken).subject.getSubject({ name: issued.subject })).resolves.toBeDefined();
  });

  it("negotiates the protocol version header, on public methods too", async () => {
    const withVersion = (version: string) => ({ metadata: Metadata({ "continuity-protocol-version": version }) });
    await expect(h.clients.serverInfo.getServerInfo({}, withVersion("1"))).resolves.toBeDefined();
    const refused = await failure(h.clients.serverInfo.getServerInfo({}, withVersion("2")));
    expect(refused).toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "PROTOCOL_VERSION_UNSUPPORTED",
      metadata: { supported: "1" },
    });
    const issued = await h.exchange(h.platforms.a, account("ver"));
    expect(
      await failure(h.as(issued.accessToken).subject.getSubject({ name: issued.subject }, withVersion("0.9"))),
    ).toMatchObject({ reason: "PROTOCOL_VERSION_UNSUPPORTED" });
  });

  it("refuses a method whose scope the token lacks, before looking at the request", async () => {
    const reader = await h.exchange(h.platforms.a, account("sc"), { scope: "state.read" });
    const client = h.as(reader.accessToken);
    expect(await failure(client.device.listDevices({ parent: reader.subject }))).toMatchObject({
      code: "PERMISSION_DENIED",
      reason: "SCOPE_INSUFFICIENT",
      metadata: { scope: "identity.manage" },
    });
    expect(await failure(client.subject.deleteSubject({ name: "garbage" }))).toMatchObject({ reason: "SCOPE_INSUFFICIENT" });
    // GetSubject needs no particular scope.
    expect((await client.subject.getSubject({ name: reader.subject })).subject?.name).toBe(reader.subject);
  });
});

describe("SubjectService", () => {
  it("never reveals another subject: its name answers NOT_FOUND, a malformed one INVALID_FIELD", async () => {
    const ana = await h.exchange(h.platforms.a, account("iso-a"));
    const ben = await h.exchange(h.platforms.a, account("iso-b"));
    const asAna = h.as(ana.accessToken);
    // Thunks: each call starts only when awaited, so none can fail unobserved meanwhile.
    for (const call of [
      () => asAna.subject.getSubject({ name: ben.subject }),
      () => asAna.subject.deleteSubject({ name: ben.subject }),
      () => asAna.subject.createLinkCode({ parent: ben.subject }),
      () => asAna.subject.listAccountLinks({ parent: ben.subject, pageSize: 0, pageToken: "" }),
      () => asAna.device.listDevices({ parent: ben.subject, pageSize: 0, pageToken: "" }),
      () => asAna.consent.listGrants({ parent: ben.subject, pageSize: 0, pageToken: "" }),
    ]) {
      expect(await failure(call())).toMatchObject({ code: "NOT_FOUND", reason: "SUBJECT_NOT_FOUND" });
    }
    expect(await failure(asAna.subject.getSubject({ name: "people/1" }))).toMatchObject({
      code: "INVALID_ARGUMENT",
      reason: "INVALID_FIELD",
      fields: ["name"],
    });
    // Ben is untouched.
    expect((await h.as(ben.accessToken).subject.getSubject({ name: ben.subject })).subject?.name).toBe(ben.subject);
  });

  it("onboards a second platform by link code, with the person's consent only", async () => {
    const anaOnA = account("ana-a");
    const anaOnB = account("ana-b");
    const onA = await h.exchange(h.platforms.a, anaOnA, { deviceId: "laptop" });
    const asA = h.as(onA.accessToken);
    const { code, expireTime } = await asA.subject.createLinkCode({ parent: onA.subject });
    expect(code).toMatch(/^[ABCDEFGHJKMNPQRSTVWXYZ23456789]{10}$/);
    const ttl = (expireTime?.getTime() ?? 0) - Date.now();
    expect(ttl).toBeGreaterThan(590_000);
    expect(ttl).toBeLessThanOrEqual(600_000);

    // Typed by a person: lower case, with a dash and spaces.
    const typed = `${code.slice(0, 5).toLowerCase()} - ${code.slice(5)}`;
    const redeemed = await h.clients.subject.redeemLinkCode({
      subjectToken: await h.platforms.b.assertion(anaOnB),
      code: typed,
    });
    expect(redeemed.accountLink).toMatchObject({ platform: "platforms/course-b", accountId: anaOnB });
    expect(redeemed.accountLink?.name.startsWith(`${onA.subject}/accountLinks/`)).toBe(true);

    const onB = await h.exchange(h.platforms.b, anaOnB);
    expect(onB).toMatchObject({ subject: onA.subject, subjectCreated: false });

    // One use only.
    const reused = await failure(
      h.clients.subject.redeemLinkCode({ subjectToken: await h.platforms.b.assertion(account("eve")), code }),
    );
    expect(reused).toMatchObject({ code: "NOT_FOUND", reason: "LINK_CODE_INVALID" });
    // Codes that cannot exist get the same answer.
    for (const guess of ["AAAAAAAAAA", "0000000000", "short"]) {
      expect(
        await failure(h.clients.subject.redeemLinkCode({ subjectToken: await h.platforms.b.assertion("eve"), code: guess })),
      ).toMatchObject({ reason: "LINK_CODE_INVALID" });
    }
    // Redemption is authenticated by the assertion.
    const { code: code2 } = await asA.subject.createLinkCode({ parent: onA.subject });
    const forged = await h.platforms.b.assertion("mallory", { key: (await generateKeyPair("ES256")).privateKey });
    expect(await failure(h.clients.subject.redeemLinkCode({ subjectToken: forged, code: code2 }))).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "ASSERTION_INVALID",
    });
    // An account that already has its own subject cannot be pulled into another.
    const elsewhere = account("carl-b");
    await h.exchange(h.platforms.b, elsewhere);
    expect(
      await failure(h.clients.subject.redeemLinkCode({ subjectToken: await h.platforms.b.assertion(elsewhere), code: code2 })),
    ).toMatchObject({ code: "FAILED_PRECONDITION", reason: "ACCOUNT_LINKED_ELSEWHERE" });

    // Links, paged one at a time with a signed page token.
    const first = await asA.subject.listAccountLinks({ parent: onA.subject, pageSize: 1, pageToken: "" });
    expect(first.accountLinks.map((l) => l.platform)).toEqual(["platforms/course-a"]);
    expect(first.nextPageToken).not.toBe("");
    const second = await asA.subject.listAccountLinks({ parent: onA.subject, pageSize: 1, pageToken: first.nextPageToken });
    expect(second.accountLinks.map((l) => [l.platform, l.accountId])).toEqual([["platforms/course-b", anaOnB]]);
    expect(second.nextPageToken).toBe("");
    // A character in the middle: the last two of a base64url token may carry bits its decoder
    // ignores, so replacing them left the same token about one run in 256.
    const at = Math.floor(first.nextPageToken.length / 2);
    const tampered = `${first.nextPageToken.slice(0, at)}${first.nextPageToken[at] === "A" ? "B" : "A"}${first.nextPageToken.slice(at + 1)}`;
    expect(
      await failure(asA.subject.listAccountLinks({ parent: onA.subject, pageSize: 1, pageToken: tampered })),
    ).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_PAGE_TOKEN" });

    // Unlinking B stops B's tokens at once; the last link cannot go.
    const linkB = second.accountLinks[0]!.name;
    await asA.subject.deleteAccountLink({ name: linkB });
    expect(await failure(h.as(onB.accessToken).subject.getSubject({ name: onA.subject }))).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "TOKEN_REVOKED",
    });
    expect(await failure(asA.subject.deleteAccountLink({ name: linkB }))).toMatchObject({
      code: "NOT_FOUND",
      reason: "ACCOUNT_LINK_NOT_FOUND",
    });
    expect(await failure(asA.subject.deleteAccountLink({ name: first.accountLinks[0]!.name }))).toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "LAST_ACCOUNT_LINK",
    });
  });

  it("link codes expire after 10 minutes", async () => {
    const onA = await h.exchange(h.platforms.a, account("ttl"));
    const { code } = await h.as(onA.accessToken).subject.createLinkCode({ parent: onA.subject });
    clockOffsetMs = 601_000;
    try {
      // The assertion is fresh on the server's (advanced) clock; only the code is stale.
      const assertion = await h.platforms.b.assertion(account("ttl-b"), { iatOffset: 601 });
      expect(await failure(h.clients.subject.redeemLinkCode({ subjectToken: assertion, code }))).toMatchObject({
        code: "NOT_FOUND",
        reason: "LINK_CODE_INVALID",
      });
    } finally {
      clockOffsetMs = 0;
    }
  });

  it("erases everything, and every token of the subject stops working", async () => {
    const who = account("erase");
    const onA = await h.exchange(h.platforms.a, who, { deviceId: "tablet" });
    const asA = h.as(onA.accessToken);
    const subjectId = idOf(onA.subject);
    const { code } = await asA.subject.createLinkCode({ parent: onA.subject });
    const accountB = account("erase-b");
    await h.clients.subject.redeemLinkCode({ subjectToken: await h.platforms.b.assertion(accountB), code });
    const onB = await h.exchange(h.platforms.b, accountB);
    await asA.stream.createStream({ parent: onA.subject, streamId: "notes", stream: streamInput("org.example.notes") });
    await asA.consent.createGrant({
      parent: onA.subject,
      grant: { granteePlatform: "platforms/course-b", streamType: "*", access: v1.GrantAccess.GRANT_ACCESS_READ },
    });

    const live = subscribe(asA, onA.subject);
    await live.started;
    await asA.subject.deleteSubject({ name: onA.subject });
    expect(await live.ended).toMatchObject({ code: "UNAUTHENTICATED", reason: "TOKEN_REVOKED" });

    for (const token of [onA.accessToken, onB.accessToken]) {
      expect(await failure(h.as(token).subject.getSubject({ name: onA.subject }))).toMatchObject({
        code: "UNAUTHENTICATED",
        reason: "TOKEN_REVOKED",
      });
    }
    expect(await h.store.getSubject(subjectId)).toBeUndefined();
    expect(await h.store.getStream(subjectId, "notes")).toBeUndefined();
    expect(await h.store.findAccountLink("course-b", accountB)).toBeUndefined();
    expect(await h.store.getDevice(subjectId, "tablet")).toBeUndefined();
    expect(await h.store.listActiveGrants(subjectId)).toEqual([]);
    // The same account starts over as a new person.
    const fresh = await h.exchange(h.platforms.a, who);
    expect(fresh.subjectCreated).toBe(true);
    expect(fresh.subject).not.toBe(onA.subject);
  });
});

describe("DeviceService", () => {
  it("registers, lists and revokes; a revoked device's tokens stop at once and it never returns", async () => {
    const who = account("dev");
    const phone = await h.exchange(h.platforms.a, who, { deviceId: "phone" });
    const manager = h.as(phone.accessToken);
    const registered = await manager.device.registerDevice({ parent: phone.subject, deviceId: "tv", displayName: "Living room" });
    expect(registered.device).toMatchObject({ name: `${phone.subject}/devices/tv`, displayName: "Living room" });
    const renamed = await manager.device.registerDevice({ parent: phone.subject, deviceId: "tv", displayName: "Den" });
    expect(renamed.device?.displayName).toBe("Den");
    const tv = await h.exchange(h.platforms.a, who, { deviceId: "tv" });
    const tvLive = subscribe(h.as(tv.accessToken), tv.subject);
    await tvLive.started;

    const revoked = await manager.device.revokeDevice({ name: `${phone.subject}/devices/tv` });
    expect(revoked.device?.state).toBe(v1.DeviceState.DEVICE_STATE_REVOKED);
    expect(revoked.device?.revokeTime).toBeInstanceOf(Date);
    expect(await tvLive.ended).toMatchObject({ code: "PERMISSION_DENIED", reason: "DEVICE_REVOKED" });
    expect(await failure(h.as(tv.accessToken).subject.getSubject({ name: tv.subject }))).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "TOKEN_REVOKED",
    });
    // Revoking again changes nothing.
    const again = await manager.device.revokeDevice({ name: `${phone.subject}/devices/tv` });
    expect(again.device?.revokeTime?.getTime()).toBe(revoked.device?.revokeTime?.getTime());
    // Neither exchange nor registration brings it back.
    expect(await failure(h.exchange(h.platforms.a, who, { deviceId: "tv" }))).toMatchObject({
      code: "PERMISSION_DENIED",
      reason: "DEVICE_REVOKED",
    });
    expect(await failure(manager.device.registerDevice({ parent: phone.subject, deviceId: "tv", displayName: "" }))).toMatchObject({
      reason: "DEVICE_REVOKED",
    });
    const listed = await manager.device.listDevices({ parent: phone.subject, pageSize: 0, pageToken: "" });
    expect(listed.devices.map((d) => [idOf(d.name), d.state])).toEqual([
      ["phone", v1.DeviceState.DEVICE_STATE_ACTIVE],
      ["tv", v1.DeviceState.DEVICE_STATE_REVOKED],
    ]);
    expect(await failure(manager.device.revokeDevice({ name: `${phone.subject}/devices/none` }))).toMatchObject({
      code: "NOT_FOUND",
      reason: "DEVICE_NOT_FOUND",
    });
    expect(
      await failure(manager.device.registerDevice({ parent: phone.subject, deviceId: "-bad", displayName: "" })),
    ).toMatchObject({ reason: "INVALID_FIELD", fields: ["device_id"] });
    // The phone itself is unaffected.
    await expect(manager.subject.getSubject({ name: phone.subject })).resolves.toBeDefined();
  });

  it("does not bind a token to another platform's device", async () => {
    const onA = await h.exchange(h.platforms.a, account("shared"), { deviceId: "kiosk" });
    const { code } = await h.as(onA.accessToken).subject.createLinkCode({ parent: onA.subject });
    const accountB = account("shared-b");
    await h.clients.subject.redeemLinkCode({ subjectToken: await h.platforms.b.assertion(accountB), code });
    expect(await failure(h.exchange(h.platforms.b, accountB, { deviceId: "kiosk" }))).toMatchObject({
      code: "INVALID_ARGUMENT",
      fields: ["device_id"],
    });
    const onB = await h.exchange(h.platforms.b, accountB, { deviceId: "b-phone" });
    expect(
      await failure(h.as(onB.accessToken).device.registerDevice({ parent: onB.subject, deviceId: "kiosk", displayName: "mine now" })),
    ).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_FIELD", fields: ["device_id"] });
    const { devices } = await h.as(onA.accessToken).device.listDevices({ parent: onA.subject, pageSize: 0, pageToken: "" });
    expect(devices.find((d) => d.name.endsWith("/devices/kiosk"))?.displayName).not.toBe("mine now");
  });
});

describe("ConsentService", () => {
  it("never lets a grantee delete the owner's stream, even under READ_WRITE", async () => {
    const onA = await h.exchange(h.platforms.a, account("del-a"));
    const asA = h.as(onA.accessToken);
    const { code } = await asA.subject.createLinkCode({ parent: onA.subject });
    const accountB = account("del-b");
    await h.clients.subject.redeemLinkCode({ subjectToken: await h.platforms.b.assertion(accountB), code });
    const asB = h.as((await h.exchange(h.platforms.b, accountB, { deviceId: "b-phone" })).accessToken);
    await asA.stream.createStream({ parent: onA.subject, streamId: "cart", stream: streamInput("org.example.cart") });
    await asA.consent.createGrant({
      parent: onA.subject,
      grant: { granteePlatform: "platforms/course-b", streamType: "*", access: v1.GrantAccess.GRANT_ACCESS_READ_WRITE },
    });
    const name = `${onA.subject}/streams/cart`;
    // B cannot make a grant in A's name, even one naming itself as grantee.
    expect(
      await failure(
        asB.consent.createGrant({
          parent: onA.subject,
          grant: { grantorPlatform: "platforms/course-a", granteePlatform: "platforms/course-a", streamType: "*", access: v1.GrantAccess.GRANT_ACCESS_READ },
        }),
      ),
    ).toMatchObject({ code: "PERMISSION_DENIED", reason: "NOT_GRANTOR" });
    expect(await failure(asB.stream.deleteStream({ name }))).toMatchObject({ code: "PERMISSION_DENIED", reason: "NOT_STREAM_OWNER" });
    expect((await asB.stream.getStream({ name })).stream?.name).toBe(name);
    await asA.stream.deleteStream({ name });
    expect(await failure(asA.stream.getStream({ name }))).toMatchObject({ code: "NOT_FOUND", reason: "STREAM_NOT_FOUND" });
  });

  it("B sees A's streams only while A's grant is active", async () => {
    const onA = await h.exchange(h.platforms.a, account("g-a"));
    const asA = h.as(onA.accessToken);
    const { code } = await asA.subject.createLinkCode({ parent: onA.subject });
    const accountB = account("g-b");
    await h.clients.subject.redeemLinkCode({ subjectToken: await h.platforms.b.assertion(accountB), code });
    const asB = h.as((await h.exchange(h.platforms.b, accountB, { deviceId: "b-phone" })).accessToken);
    await asA.stream.createStream({ parent: onA.subject, streamId: "progress", stream: streamInput("org.example.course-progress") });
    await asA.stream.createStream({ parent: onA.subject, streamId: "cart", stream: streamInput("org.example.cart") });
    const streamName = `${onA.subject}/streams/progress`;
    const listB = async () =>
      (await asB.stream.listStreams({ parent: onA.subject, pageSize: 0, pageToken: "", type: "" })).streams.map((s) => idOf(s.name));

    expect(await listB()).toEqual([]);
    expect(await failure(asB.stream.getStream({ name: streamName }))).toMatchObject({ code: "NOT_FOUND", reason: "STREAM_NOT_FOUND" });

    const { grant } = await asA.consent.createGrant({
      parent: onA.subject,
      grant: {
        granteePlatform: "platforms/course-b",
        streamType: "org.example.course-progress",
        access: v1.GrantAccess.GRANT_ACCESS_READ,
      },
    });
    expect(grant).toMatchObject({
      grantorPlatform: "platforms/course-a",
      granteePlatform: "platforms/course-b",
      access: v1.GrantAccess.GRANT_ACCESS_READ,
    });
    expect(await listB()).toEqual(["progress"]);
    expect((await asB.stream.getStream({ name: streamName })).stream?.type).toBe("org.example.course-progress");

    // Both sides see the grant; B may revoke what it holds, a third party may not.
    const grantsOf = async (client: typeof asA) =>
      (await client.consent.listGrants({ parent: onA.subject, pageSize: 0, pageToken: "" })).grants.map((g) => g.name);
    expect(await grantsOf(asA)).toEqual([grant!.name]);
    expect(await grantsOf(asB)).toEqual([grant!.name]);
    const live = subscribe(asB, onA.subject);
    await live.started;

    const { code: codeC } = await asA.subject.createLinkCode({ parent: onA.subject });
    const accountC = account("g-c");
    await h.clients.subject.redeemLinkCode({ subjectToken: await h.platforms.readOnly.assertion(accountC), code: codeC });
    const readerC = await h.exchange(h.platforms.readOnly, accountC);
    // reader-c has no identity.manage at all.
    expect(await failure(h.as(readerC.accessToken).consent.revokeGrant({ name: grant!.name }))).toMatchObject({
      reason: "SCOPE_INSUFFICIENT",
    });

    const revoked = await asA.consent.revokeGrant({ name: grant!.name });
    expect(revoked.grant?.revokeTime).toBeInstanceOf(Date);
    // Live subscriptions included: told which streams went, then ended.
    expect(await live.ended).toMatchObject({ code: "PERMISSION_DENIED", reason: "GRANT_REVOKED" });
    const notice = live.messages.find((m) => m.event?.$case === "accessRevoked");
    expect(notice?.event?.$case === "accessRevoked" && notice.event.value).toMatchObject({ grant: grant!.name, streams: [streamName] });
    // At once: the very next call.
    expect(await failure(asB.stream.getStream({ name: streamName }))).toMatchObject({ code: "NOT_FOUND" });
    expect(await listB()).toEqual([]);
    expect(await grantsOf(asA)).toEqual([]);
    // Revoking a revoked grant changes nothing.
    expect((await asB.consent.revokeGrant({ name: grant!.name })).grant?.revokeTime?.getTime()).toBe(
      revoked.grant?.revokeTime?.getTime(),
    );
    expect(
      await failure(asA.consent.revokeGrant({ name: `${onA.subject}/grants/${"b".repeat(26)}` })),
    ).toMatchObject({ code: "NOT_FOUND", reason: "GRANT_NOT_FOUND" });
  });

  it("validates grants: grantee must be another linked platform, access must be set", async () => {
    const onA = await h.exchange(h.platforms.a, account("gv"));
    const asA = h.as(onA.accessToken);
    const create = (grant: Partial<continuity.v1.Grant>) =>
      asA.consent.createGrant({
        parent: onA.subject,
        grant: { granteePlatform: "platforms/course-b", streamType: "*", access: v1.GrantAccess.GRANT_ACCESS_READ, ...grant },
      });
    expect(await failure(create({ granteePlatform: "platforms/course-a" }))).toMatchObject({
      fields: ["grant.grantee_platform"],
    });
    // course-b is configured but not linked to this subject.
    expect(await failure(create({}))).toMatchObject({ reason: "INVALID_FIELD", fields: ["grant.grantee_platform"] });
    expect(await failure(create({ granteePlatform: "course-b" }))).toMatchObject({ fields: ["grant.grantee_platform"] });
    const both = await failure(create({ access: v1.GrantAccess.GRANT_ACCESS_UNSPECIFIED, streamType: "no dots" }));
    expect(both.fields.sort()).toEqual(["grant.access", "grant.stream_type"]);
    expect(await failure(asA.consent.createGrant({ parent: onA.subject, grant: undefined }))).toMatchObject({
      fields: ["grant"],
    });
  });

  it("a platform configured without identity.manage cannot manage consent", async () => {
    const reader = await h.exchange(h.platforms.readOnly, account("ro"));
    const client = h.as(reader.accessToken);
    expect(await failure(client.consent.listGrants({ parent: reader.subject, pageSize: 0, pageToken: "" }))).toMatchObject({
      code: "PERMISSION_DENIED",
      reason: "SCOPE_INSUFFICIENT",
    });
  });
});

describe("PortabilityService", () => {
  it("keeps migrations to the token's subject: unknown ones are MIGRATION_NOT_FOUND, another subject's SUBJECT_NOT_FOUND", async () => {
    const onA = await h.exchange(h.platforms.a, account("port"));
    const other = await h.exchange(h.platforms.a, account("port-other"));
    const client = h.as(onA.accessToken);
    expect(await failure(client.portability.getMigration({ name: `${onA.subject}/migrations/x` }))).toMatchObject({ code: "NOT_FOUND", reason: "MIGRATION_NOT_FOUND" });
    expect(await failure(client.portability.getMigration({ name: `${other.subject}/migrations/x` }))).toMatchObject({ code: "NOT_FOUND", reason: "SUBJECT_NOT_FOUND" });
    const exported = (async () => {
      for await (const _part of client.portability.exportSubject({ name: other.subject, after: [] })) {
        // never reached
      }
    })();
    expect(await failure(exported)).toMatchObject({ code: "NOT_FOUND", reason: "SUBJECT_NOT_FOUND" });
  });
});
