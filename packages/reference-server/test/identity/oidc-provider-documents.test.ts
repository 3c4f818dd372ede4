import { afterEach, describe, expect, it } from "vitest";
import { SignJWT } from "jose";
import { ALL_SCOPES } from "../../src/auth/context.js";
import { createIdTokenVerifier, createMemoryJwksCopies } from "../../src/auth/id-tokens.js";
import { createPlatformRegistry, type OidcConfig, type PlatformConfig } from "../../src/auth/platforms.js";
import { openTestPostgresStore } from "../../src/testing/postgres.js";
import { failure, startIdentityHarness, type IdentityHarness } from "./harness.js";
import { startTestOidcProvider, type ProviderKey, type TestOidcProvider } from "./oidc-provider.js";

// The provider documents over real HTTP: the caps and the whole-answer timeout of a fetch
// (TOKEN-026, TOKEN-027), the last good copy standing in for a provider that cannot be reached
// and a withdrawn key refused once a fetch succeeds (TOKEN-028), discovery (TOKEN-029), and
// the header checks no key set can rescue (TOKEN-030, TOKEN-022).

const ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token";
const CLIENT_ID = "app-client-1";
const UNAVAILABLE = { code: "UNAVAILABLE", reason: "IDENTITY_PROVIDER_UNAVAILABLE" } as const;
const INVALID = { code: "UNAUTHENTICATED", reason: "ASSERTION_INVALID" } as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function oidcPlatform(id: string, provider: TestOidcProvider, options: Partial<OidcConfig> & { discover?: boolean } = {}): PlatformConfig {
  const { discover, ...oidc } = options;
  return {
    id,
    displayName: id,
    jwks: undefined,
    oidc: {
      issuer: provider.issuer,
      clientId: CLIENT_ID,
      jwksUri: discover === true ? undefined : new URL(provider.jwksUri),
      jwksTimeoutMs: 500,
      jwksCooldownMs: 1_000,
      jwksRefreshMs: 600_000,
      jwksMaxStaleMs: 86_400_000,
      ...oidc,
    },
    scopes: new Set(ALL_SCOPES),
  };
}

function exchange(harness: IdentityHarness, subjectToken: string) {
  return harness.clients.token.exchangeToken({
    grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
    subjectTokenType: ID_TOKEN_TYPE,
    subjectToken,
    scope: "",
    deviceId: "",
    deviceDisplayName: "",
  });
}

let provider: TestOidcProvider;
let harness: IdentityHarness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
  await provider.close();
});

async function start(options: Partial<OidcConfig> & { discover?: boolean; issuer?: string | "self" } = {}): Promise<{ key: ProviderKey; token: (key?: ProviderKey, header?: Record<string, unknown>) => Promise<string> }> {
  const { issuer, ...platformOptions } = options;
  provider = await startTestOidcProvider(issuer);
  const key = await provider.newKey("RS256");
  provider.published = [key];
  harness = await startIdentityHarness({ extraPlatforms: [oidcPlatform("idp-app", provider, platformOptions)] });
  let n = 0;
  return { key, token: (k = key, header = {}) => provider.idToken({ key: k, sub: `user-${(n += 1)}`, audience: CLIENT_ID, header }) };
}

describe("fetching a JWKS (TOKEN-026, TOKEN-027)", () => {
  it.each(["huge-chunked", "huge-declared"] as const)("stops reading a %s JWKS past 1 MiB and answers UNAVAILABLE", async (mode) => {
    const { token } = await start();
    provider.mode = mode;
    expect(await failure(exchange(harness!, await token()))).toMatchObject(UNAVAILABLE);
    // The server aborted the request: the provider could not send its 64 MiB (loopback socket
    // buffers and the client's read-ahead take several MiB the server never reads; 7 MB seen).
    await sleep(100);
    expect(provider.hugeBytesSent).toBeLessThan(24 * 1_048_576);
    provider.mode = "serve";
    expect((await exchange(harness!, await token())).subjectCreated).toBe(true);
  });

  it("refuses a JWKS of more than 100 keys, and takes one of 100", async () => {
    const { key, token } = await start();
    const filler = (count: number) => Array.from({ length: count }, (_, i) => ({ ...key, kid: `filler-${i}`, publicJwk: { ...key.publicJwk, kid: `filler-${i}` } }));
    provider.published = [key, ...filler(100)];
    expect(await failure(exchange(harness!, await token()))).toMatchObject(UNAVAILABLE);
    provider.published = [key, ...filler(99)];
    expect((await exchange(harness!, await token())).subjectCreated).toBe(true);
  });

  it("gives up on a body that trickles in within the timeout, headers or not", async () => {
    const { token } = await start({ jwksTimeoutMs: 500 });
    provider.mode = "slow-body";
    const started = Date.now();
    expect(await failure(exchange(harness!, await token()))).toMatchObject(UNAVAILABLE);
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it("keeps the copy it holds when a refetch for an unknown kid brings too much", async () => {
    const { key, token } = await start();
    await exchange(harness!, await token());
    const next = await provider.newKey("RS256");
    provider.published = [key, next];
    provider.mode = "huge-chunked";
    await sleep(1_100);
    expect(await failure(exchange(harness!, await token(next)))).toMatchObject(UNAVAILABLE);
    expect(provider.fetches).toBe(2);
    expect((await exchange(harness!, await token())).subjectCreated).toBe(true);
  });
});

describe("the last good copy (TOKEN-028)", () => {
  it("verifies with a copy past its refresh age while the provider fails, until the copy is jwksMaxStaleMs old", async () => {
    const { key, token } = await start({ jwksRefreshMs: 1_000, jwksMaxStaleMs: 5_000, jwksCooldownMs: 2_000, jwksTimeoutMs: 300 });
    await exchange(harness!, await token());
    // The copy was fetched before this moment, so it is older than any wait measured from here.
    const fetched = Date.now();
    expect(provider.fetches).toBe(1);
    provider.mode = "error";
    await sleep(1_100);
    expect((await exchange(harness!, await token())).subjectCreated).toBe(true);
    expect(provider.fetches).toBe(2);
    // Within the cooldown the failed refresh is not tried again: the copy answers at once.
    expect((await exchange(harness!, await token())).subjectCreated).toBe(true);
    expect(provider.fetches).toBe(2);
    provider.mode = "hang";
    await sleep(2_100);
    expect((await exchange(harness!, await token())).subjectCreated).toBe(true);
    expect(provider.fetches).toBe(3);
    await sleep(Math.max(0, 5_100 - (Date.now() - fetched)));
    expect(await failure(exchange(harness!, await token()))).toMatchObject(UNAVAILABLE);

    // The provider is back, and has withdrawn the key: it is refused from the first fetch on.
    const next = await provider.newKey("RS256");
    provider.published = [next];
    provider.mode = "serve";
    expect(await failure(exchange(harness!, await token(key)))).toMatchObject(INVALID);
    expect((await exchange(harness!, await token(next))).subjectCreated).toBe(true);
  });

  it("refuses a withdrawn key from the fetch that no longer lists it, on every server of the store", async () => {
    provider = await startTestOidcProvider();
    const [kept, withdrawn] = [await provider.newKey("RS256"), await provider.newKey("RS256")];
    provider.published = [kept, withdrawn];
    const registry = createPlatformRegistry([oidcPlatform("idp-app", provider, { jwksRefreshMs: 1_000, jwksMaxStaleMs: 60_000 })]);
    const copies = createMemoryJwksCopies();
    const now = () => new Date();
    const [one, two] = [createIdTokenVerifier(registry, now, copies), createIdTokenVerifier(registry, now, copies)];
    const signed = (key: ProviderKey) => provider.idToken({ key, sub: "u", audience: CLIENT_ID });
    await one.verify(await signed(withdrawn));
    await two.verify(await signed(withdrawn));
    expect(provider.fetches).toBe(1);
    provider.published = [kept];
    await sleep(1_100);
    await one.verify(await signed(kept));
    expect(provider.fetches).toBe(2);
    // Server two's own copy is fresh by its clock too, yet the store's newer copy wins.
    await expect(two.verify(await signed(withdrawn))).rejects.toMatchObject({ reason: "ASSERTION_INVALID" });
    await expect(one.verify(await signed(withdrawn))).rejects.toMatchObject({ reason: "ASSERTION_INVALID" });
    expect(provider.fetches).toBe(2);
  });
});

describe("the last good copy, shared on PostgreSQL (TOKEN-025, TOKEN-028)", () => {
  it("is the store's: a server that never fetched stands in with it through an outage, and drops a key another server's fetch withdrew", async () => {
    provider = await startTestOidcProvider();
    const [kept, withdrawn] = [await provider.newKey("RS256"), await provider.newKey("ES256")];
    provider.published = [kept, withdrawn];
    const pg = await openTestPostgresStore();
    try {
      const registry = createPlatformRegistry([oidcPlatform("idp-app", provider, { jwksRefreshMs: 1_000, jwksMaxStaleMs: 60_000, jwksCooldownMs: 1_000, jwksTimeoutMs: 300 })]);
      const [one, two] = [createIdTokenVerifier(registry, () => new Date(), pg.store), createIdTokenVerifier(registry, () => new Date(), pg.store)];
      const signed = (key: ProviderKey) => provider.idToken({ key, sub: "u", audience: CLIENT_ID });
      await one.verify(await signed(kept));
      expect(provider.fetches).toBe(1);
      provider.mode = "error";
      await sleep(1_100);
      // Two never fetched: the store's copy is past its refresh age, its refetch fails, the copy stands in.
      await expect(two.verify(await signed(withdrawn))).resolves.toMatchObject({ accountId: "u" });
      expect(provider.fetches).toBe(2);
      provider.mode = "serve";
      provider.published = [kept];
      await sleep(1_100);
      await one.verify(await signed(kept));
      expect(provider.fetches).toBe(3);
      await expect(two.verify(await signed(withdrawn))).rejects.toMatchObject({ reason: "ASSERTION_INVALID" });
      expect(provider.fetches).toBe(3);
    } finally {
      await pg.close();
    }
  });
});

describe("discovery (TOKEN-029)", () => {
  it("finds the JWKS through the issuer's discovery document, and reads it again only with the JWKS past its refresh age", async () => {
    const { token } = await start({ issuer: "self", discover: true, jwksRefreshMs: 1_000 });
    expect((await exchange(harness!, await token())).subjectCreated).toBe(true);
    expect([provider.discoveries, provider.fetches]).toEqual([1, 1]);
    await exchange(harness!, await token());
    expect([provider.discoveries, provider.fetches]).toEqual([1, 1]);
    await sleep(1_100);
    await exchange(harness!, await token());
    expect([provider.discoveries, provider.fetches]).toEqual([2, 2]);
  });

  it.each<[string, (p: TestOidcProvider) => { issuer?: string; jwks_uri?: string }]>([
    ["names another issuer", (p) => ({ issuer: `${p.issuer}/other` })],
    ["names the issuer with a trailing slash", (p) => ({ issuer: `${p.issuer}/` })],
    ["has no jwks_uri", () => ({ jwks_uri: undefined as unknown as string })],
    ["names a plain-http jwks_uri off loopback", () => ({ jwks_uri: "http://keys.idp.example/jwks.json" })],
  ])("answers UNAVAILABLE, fetching no JWKS, when the document %s", async (_label, discovery) => {
    const { token } = await start({ issuer: "self", discover: true });
    provider.discovery = discovery(provider);
    expect(await failure(exchange(harness!, await token()))).toMatchObject(UNAVAILABLE);
    expect([provider.discoveries, provider.fetches]).toEqual([1, 0]);
  });

  it("reads the discovery document again after a JWKS fetch failed (the provider moved its keys)", async () => {
    const { token } = await start({ issuer: "self", discover: true });
    provider.discovery = { jwks_uri: `${provider.origin}/moved.json` };
    expect(await failure(exchange(harness!, await token()))).toMatchObject(UNAVAILABLE);
    provider.discovery = {};
    expect((await exchange(harness!, await token())).subjectCreated).toBe(true);
    expect(provider.discoveries).toBe(2);
  });
});

describe("headers no key set can rescue (TOKEN-022, TOKEN-030)", () => {
  it("takes a token without kid when one key fits, and refuses it when several do", async () => {
    const { key, token } = await start();
    expect((await exchange(harness!, await token(key, { kid: undefined }))).subjectCreated).toBe(true);
    provider.published = [key, await provider.newKey("RS256")];
    await sleep(1_100);
    // A fresh kid makes the server fetch the second key; then the kid-less token fits two keys.
    await failure(exchange(harness!, await token(key, { kid: "unknown" })));
    expect(provider.fetches).toBe(2);
    expect(await failure(exchange(harness!, await token(key, { kid: undefined })))).toMatchObject(INVALID);
  });

  it.each([5, null, { a: 1 }])("refuses a typ of %j with ASSERTION_INVALID", async (typ) => {
    const { key } = await start();
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ iss: provider.issuer, sub: "u", aud: CLIENT_ID, iat: now, exp: now + 60 })
      .setProtectedHeader({ alg: "RS256", kid: key.kid, typ: typ as unknown as string })
      .sign(key.privateKey);
    expect(await failure(exchange(harness!, token))).toMatchObject(INVALID);
  });
});
