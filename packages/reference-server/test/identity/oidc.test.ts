import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createAssertionTokenProvider, createContinuityClient } from "@continuity/sdk";
import { ALL_SCOPES } from "../../src/auth/context.js";
import type { PlatformConfig } from "../../src/auth/platforms.js";
import { failure, idOf, startIdentityHarness, type IdentityHarness } from "./harness.js";
import { startTestOidcProvider, type ProviderKey, type TestOidcProvider } from "./oidc-provider.js";

const ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token";
const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const CLIENT_ID = "app-client-1";

function oidcPlatform(
  id: string,
  provider: { issuer: string; jwksUri: string },
  options: { clientId?: string; timeoutMs?: number; cooldownMs?: number } = {},
): PlatformConfig {
  return {
    id,
    displayName: id,
    jwks: undefined,
    oidc: {
      issuer: provider.issuer,
      clientId: options.clientId ?? CLIENT_ID,
      jwksUri: new URL(provider.jwksUri),
      jwksTimeoutMs: options.timeoutMs ?? 300,
      jwksCooldownMs: options.cooldownMs ?? 1_000,
      jwksRefreshMs: 600_000,
      jwksMaxStaleMs: 86_400_000,
    },
    scopes: new Set(ALL_SCOPES),
  };
}

function exchangeIdToken(harness: IdentityHarness, subjectToken: string, subjectTokenType = ID_TOKEN_TYPE) {
  return harness.clients.token.exchangeToken({
    grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
    subjectTokenType,
    subjectToken,
    scope: "",
    deviceId: "",
    deviceDisplayName: "",
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A loopback port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe("ExchangeToken with an OIDC ID token", () => {
  let provider: TestOidcProvider;
  let key: ProviderKey;
  let harness: IdentityHarness;

  beforeAll(async () => {
    provider = await startTestOidcProvider();
    key = await provider.newKey("RS256");
    provider.published = [key];
    const other = await startTestOidcProvider("https://other.idp.test.invalid");
    await other.close();
    harness = await startIdentityHarness({
      extraPlatforms: [
        oidcPlatform("idp-app", provider),
        // Same provider, another app: the ID token's audience decides which platform it is.
        oidcPlatform("idp-app-two", provider, { clientId: "app-client-2" }),
      ],
    });
  });
  afterAll(async () => {
    await harness.close();
    await provider.close();
  });

  it("maps sub to an account of the platform: the first exchange creates the subject, later ones find it", async () => {
    const sub = "idp-user-1";
    const first = await exchangeIdToken(harness, await provider.idToken({ key, sub, audience: CLIENT_ID }));
    expect(first.subjectCreated).toBe(true);
    expect(first.platform).toBe("platforms/idp-app");
    expect(first.issuedTokenType).toBe("urn:ietf:params:oauth:token-type:access_token");
    const again = await exchangeIdToken(harness, await provider.idToken({ key, sub, audience: [CLIENT_ID] }));
    expect(again.subject).toBe(first.subject);
    expect(again.subjectCreated).toBe(false);
    const subject = await harness.as(again.accessToken).subject.getSubject({ name: again.subject });
    expect(subject.subject?.name).toBe(first.subject);
    const links = await harness.as(again.accessToken).subject.listAccountLinks({ parent: again.subject, pageSize: 0, pageToken: "" });
    expect(links.accountLinks.map((link) => [link.platform, link.accountId])).toEqual([["platforms/idp-app", sub]]);
    expect(await harness.store.findAccountLink("idp-app", sub)).toMatchObject({ subjectId: idOf(first.subject) });
  });

  it("picks the platform among those sharing the issuer by aud, or by azp when aud has several values", async () => {
    const byAud = await exchangeIdToken(harness, await provider.idToken({ key, sub: "shared-1", audience: "app-client-2" }));
    expect(byAud.platform).toBe("platforms/idp-app-two");
    const byAzp = await exchangeIdToken(
      harness,
      await provider.idToken({ key, sub: "shared-1", audience: [CLIENT_ID, "app-client-2"], claims: { azp: "app-client-2" } }),
    );
    expect(byAzp.platform).toBe("platforms/idp-app-two");
    expect(byAzp.subject).toBe(byAud.subject);
  });

  it("works through the SDK's token provider", async () => {
    const client = createContinuityClient({
      address: harness.address,
      tokenProvider: createAssertionTokenProvider({
        subjectTokenType: ID_TOKEN_TYPE,
        deviceId: "sdk-device-1",
        getAssertion: () => provider.idToken({ key, sub: "sdk-user", audience: CLIENT_ID }),
      }),
    });
    try {
      const session = await client.session();
      expect(session.platform).toBe("platforms/idp-app");
      expect(session.device).toBe(`${session.subject}/devices/sdk-device-1`);
      const { streams } = await client.streams.listStreams({ parent: session.subject, pageSize: 0, pageToken: "" });
      expect(streams).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("accepts an exp up to 30 s in the past and no nonce check, and refuses beyond the skew", async () => {
    const now = Math.floor(Date.now() / 1000);
    const lateButInSkew = await provider.idToken({ key, sub: "skew", audience: CLIENT_ID, claims: { iat: now - 3600, exp: now - 20, nonce: undefined } });
    expect((await exchangeIdToken(harness, lateButInSkew)).platform).toBe("platforms/idp-app");
    const expired = await provider.idToken({ key, sub: "skew", audience: CLIENT_ID, claims: { iat: now - 3600, exp: now - 60 } });
    expect(await failure(exchangeIdToken(harness, expired))).toMatchObject({ code: "UNAUTHENTICATED", reason: "ASSERTION_INVALID" });
  });

  it.each<[string, (sign: TestOidcProvider["idToken"], key: ProviderKey) => Promise<string>]>([
    ["another audience", (sign, k) => sign({ key: k, sub: "u", audience: "someone-else" })],
    ["several audiences without azp", (sign, k) => sign({ key: k, sub: "u", audience: [CLIENT_ID, "someone-else"] })],
    ["an azp naming another client", (sign, k) => sign({ key: k, sub: "u", audience: CLIENT_ID, claims: { azp: "someone-else" } })],
    ["an iat 60 s in the future", (sign, k) => sign({ key: k, sub: "u", audience: CLIENT_ID, claims: { iat: Math.floor(Date.now() / 1000) + 60 } })],
    ["no iat", (sign, k) => sign({ key: k, sub: "u", audience: CLIENT_ID, claims: { iat: undefined } })],
    ["no exp", (sign, k) => sign({ key: k, sub: "u", audience: CLIENT_ID, claims: { exp: undefined } })],
    ["no sub", (sign, k) => sign({ key: k, sub: "u", audience: CLIENT_ID, claims: { sub: undefined } })],
    ["a sub of 256 characters", (sign, k) => sign({ key: k, sub: "x".repeat(256), audience: CLIENT_ID })],
    ["typ continuity-assertion+jwt", (sign, k) => sign({ key: k, sub: "u", audience: CLIENT_ID, header: { typ: "continuity-assertion+jwt" } })],
    ["typ at+jwt", (sign, k) => sign({ key: k, sub: "u", audience: CLIENT_ID, header: { typ: "at+jwt" } })],
    ["an unknown kid", (sign, k) => sign({ key: k, sub: "u", audience: CLIENT_ID, header: { kid: "not-published" } })],
    ["a flipped signature byte", async (sign, k) => {
      const token = await sign({ key: k, sub: "u", audience: CLIENT_ID });
      const last = token.at(-2) === "A" ? "B" : "A";
      return `${token.slice(0, -2)}${last}${token.at(-1)}`;
    }],
  ])("refuses %s with UNAUTHENTICATED / ASSERTION_INVALID", async (_label, make) => {
    const token = await make(provider.idToken.bind(provider), key);
    expect(await failure(exchangeIdToken(harness, token))).toMatchObject({ code: "UNAUTHENTICATED", reason: "ASSERTION_INVALID" });
  });

  it("refuses a key the provider does not publish and alg none", async () => {
    const stranger = await provider.newKey("RS256");
    const forged = await provider.idToken({ key: { ...stranger, kid: key.kid }, sub: "u", audience: CLIENT_ID });
    expect(await failure(exchangeIdToken(harness, forged))).toMatchObject({ code: "UNAUTHENTICATED", reason: "ASSERTION_INVALID" });
    const enc = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const unsigned = `${enc({ alg: "none" })}.${enc({ iss: provider.issuer, aud: CLIENT_ID, sub: "u", iat: now, exp: now + 60 })}.`;
    expect(await failure(exchangeIdToken(harness, unsigned))).toMatchObject({ code: "UNAUTHENTICATED", reason: "ASSERTION_INVALID" });
  });

  it("refuses another issuer, even signed with the provider's key, with PLATFORM_UNKNOWN", async () => {
    for (const iss of ["https://evil.test.invalid", `${provider.issuer}/`, provider.issuer.toUpperCase()]) {
      const token = await provider.idToken({ key, sub: "u", audience: CLIENT_ID, claims: { iss } });
      expect(await failure(exchangeIdToken(harness, token)), iss).toMatchObject({ code: "UNAUTHENTICATED", reason: "PLATFORM_UNKNOWN" });
    }
  });

  it("redeems a link code with an ID token, known by its issuer, and refuses a bad one without consuming the code", async () => {
    const owner = await harness.exchange(harness.platforms.a, "link-owner");
    const { code } = await harness.as(owner.accessToken).subject.createLinkCode({ parent: owner.subject });
    const wrongAudience = await provider.idToken({ key, sub: "link-joiner", audience: "someone-else" });
    expect(await failure(harness.clients.subject.redeemLinkCode({ subjectToken: wrongAudience, code }))).toMatchObject({
      code: "UNAUTHENTICATED",
      reason: "ASSERTION_INVALID",
    });
    const idToken = await provider.idToken({ key, sub: "link-joiner", audience: CLIENT_ID });
    const { accountLink } = await harness.clients.subject.redeemLinkCode({ subjectToken: idToken, code });
    expect([accountLink?.platform, accountLink?.accountId]).toEqual(["platforms/idp-app", "link-joiner"]);
    const joined = await exchangeIdToken(harness, await provider.idToken({ key, sub: "link-joiner", audience: CLIENT_ID }));
    expect([joined.subject, joined.subjectCreated]).toEqual([owner.subject, false]);
  });

  it("answers a token type the platform does not take with INVALID_FIELD on subject_token_type", async () => {
    const idToken = await provider.idToken({ key, sub: "u", audience: CLIENT_ID });
    expect(await failure(exchangeIdToken(harness, idToken, JWT_TOKEN_TYPE))).toMatchObject({
      code: "INVALID_ARGUMENT",
      reason: "INVALID_FIELD",
      fields: ["subject_token_type"],
    });
    const assertion = await harness.platforms.a.assertion("acct-1");
    expect(await failure(exchangeIdToken(harness, assertion, ID_TOKEN_TYPE))).toMatchObject({
      code: "INVALID_ARGUMENT",
      reason: "INVALID_FIELD",
      fields: ["subject_token_type"],
    });
    // Assertions of the other platforms still work as before.
    expect((await exchangeIdToken(harness, assertion, JWT_TOKEN_TYPE)).platform).toBe(`platforms/${harness.platforms.a.id}`);
  });
});

describe("the provider's JWKS over time", () => {
  let provider: TestOidcProvider;
  let harness: IdentityHarness | undefined;
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
    await provider.close();
  });

  it("is fetched once and cached, not per exchange", async () => {
    provider = await startTestOidcProvider();
    const key = await provider.newKey("ES256");
    provider.published = [key];
    harness = await startIdentityHarness({ extraPlatforms: [oidcPlatform("idp-app", provider)] });
    expect(provider.fetches).toBe(0);
    for (let i = 0; i < 5; i++) await exchangeIdToken(harness, await provider.idToken({ key, sub: `u-${i}`, audience: CLIENT_ID }));
    expect(provider.fetches).toBe(1);
  });

  it("follows a rotation: a new kid after the cooldown refetches, and a flood of unknown kids fetches at most once", async () => {
    provider = await startTestOidcProvider();
    const oldKey = await provider.newKey("RS256");
    // Made before the clock of the 1 s cooldown starts: RSA key generation can take most of it on a loaded machine.
    const newKey = await provider.newKey("RS256");
    const signedWithNew = () => provider.idToken({ key: newKey, sub: "rotating", audience: CLIENT_ID });
    const early = await signedWithNew();
    provider.published = [oldKey];
    harness = await startIdentityHarness({ extraPlatforms: [oidcPlatform("idp-app", provider, { cooldownMs: 1_000 })] });
    const first = await exchangeIdToken(harness, await provider.idToken({ key: oldKey, sub: "rotating", audience: CLIENT_ID }));
    expect(provider.fetches).toBe(1);

    provider.published = [oldKey, newKey];
    // Within the cooldown the cached set is all there is.
    expect(await failure(exchangeIdToken(harness, early))).toMatchObject({ reason: "ASSERTION_INVALID" });
    expect(provider.fetches).toBe(1);

    await sleep(1_100);
    const rotated = await exchangeIdToken(harness, await signedWithNew());
    expect(rotated.subject).toBe(first.subject);
    expect(provider.fetches).toBe(2);

    await sleep(1_100);
    const strangers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => provider.idToken({ key: newKey, sub: "u", audience: CLIENT_ID, header: { kid: `unknown-${i}` } })),
    );
    const outcomes = await Promise.all(strangers.map((token) => failure(exchangeIdToken(harness!, token))));
    expect(new Set(outcomes.map((outcome) => outcome.reason))).toEqual(new Set(["ASSERTION_INVALID"]));
    expect(provider.fetches).toBe(3);
  });

  it("unreachable: a refused connection, an error status or no answer fail with UNAVAILABLE / IDENTITY_PROVIDER_UNAVAILABLE within the timeout", async () => {
    provider = await startTestOidcProvider();
    const key = await provider.newKey("RS256");
    provider.published = [key];
    const down = { issuer: "https://down.idp.test.invalid", jwksUri: `http://127.0.0.1:${await closedPort()}/jwks.json` };
    harness = await startIdentityHarness({
      extraPlatforms: [oidcPlatform("idp-app", provider, { timeoutMs: 300 }), oidcPlatform("idp-down", down, { timeoutMs: 300 })],
    });
    const expectUnavailable = async (token: string, withinMs: number) => {
      const started = Date.now();
      expect(await failure(exchangeIdToken(harness!, token))).toMatchObject({ code: "UNAVAILABLE", reason: "IDENTITY_PROVIDER_UNAVAILABLE" });
      expect(Date.now() - started).toBeLessThan(withinMs);
    };

    await expectUnavailable(await provider.idToken({ key, sub: "u", audience: CLIENT_ID, claims: { iss: down.issuer } }), 1_000);

    provider.mode = "error";
    await expectUnavailable(await provider.idToken({ key, sub: "u", audience: CLIENT_ID }), 1_000);

    provider.mode = "hang";
    const started = Date.now();
    await expectUnavailable(await provider.idToken({ key, sub: "u", audience: CLIENT_ID }), 1_500);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    // Nothing was created for the account while its provider was away.
    expect(await harness.store.findAccountLink("idp-app", "u")).toBeUndefined();

    provider.mode = "serve";
    expect((await exchangeIdToken(harness, await provider.idToken({ key, sub: "u", audience: CLIENT_ID }))).subjectCreated).toBe(true);
  });
});

describe("a server without OIDC platforms", () => {
  let harness: IdentityHarness;
  beforeAll(async () => {
    harness = await startIdentityHarness();
  });
  afterAll(async () => {
    await harness.close();
  });

  it("does not take the id_token type at all (TOKEN-010)", async () => {
    const assertion = await harness.platforms.a.assertion("acct-1");
    expect(await failure(exchangeIdToken(harness, assertion, ID_TOKEN_TYPE))).toMatchObject({
      code: "INVALID_ARGUMENT",
      reason: "INVALID_FIELD",
      fields: ["subject_token_type"],
    });
  });
});
