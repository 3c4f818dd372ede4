import { SignJWT } from "jose";
import { ClientError } from "nice-grpc";
import { BadRequest, RichClientError } from "nice-grpc-error-details";
import { TOKEN_EXCHANGE, type CaseContext } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, expectError, Status, type ExpectedError } from "../harness/expect.js";
import type { OidcProvider } from "../harness/oidc-provider.js";
import { lastSegment } from "./probes.js";

// ID tokens of a platform's own OpenID provider (auth.md, "ID tokens"). The suite hosts the
// providers on loopback and writes their platforms into the spawned server's platforms file,
// so these cases need spawn mode; a server that takes no ID tokens at all says so with
// TOKEN-010 and the cases are skipped with that reason.

const INVALID: ExpectedError = { code: Status.UNAUTHENTICATED, reason: "ASSERTION_INVALID" };
const WRONG_TYPE: ExpectedError = { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["subject_token_type"] };

function exchange(ctx: CaseContext, subjectToken: string, options: { type?: string; deviceId?: string } = {}) {
  return ctx.clients().tokens.exchangeToken({
    grantType: TOKEN_EXCHANGE.grantType,
    subjectToken,
    subjectTokenType: options.type ?? TOKEN_EXCHANGE.idTokenType,
    scope: "",
    deviceId: options.deviceId ?? "",
    deviceDisplayName: "",
  });
}

/**
 * The providers, once a valid ID token of the main provider has been exchanged: the case is
 * skipped when the server refuses the token type itself (it takes no ID tokens, TOKEN-010).
 */
export async function requireIdTokens(ctx: CaseContext): Promise<OidcProvider> {
  const oidc = ctx.oidcProvider();
  try {
    await exchange(ctx, await oidc.main.idToken({ sub: ctx.uniqueId("probe") }));
  } catch (error) {
    const fields = error instanceof RichClientError ? error.extra.flatMap((detail) => (detail.$type === BadRequest.$type ? detail.fieldViolations.map((v) => v.field) : [])) : [];
    if (error instanceof ClientError && error.code === Status.INVALID_ARGUMENT && fields.includes("subject_token_type")) {
      ctx.skip("the server takes no ID tokens (subject_token_type id_token refused, TOKEN-010)");
    }
    throw error;
  }
  return oidc;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Exchanges fresh tokens until one is accepted, retrying UNAUTHENTICATED answers every 500 ms for `withinMs`. */
async function acceptedWithin(ctx: CaseContext, token: () => Promise<string>, withinMs: number) {
  const started = Date.now();
  let lastError = "none";
  while (Date.now() - started < withinMs) {
    try {
      return { response: await exchange(ctx, await token()), afterMs: Date.now() - started, lastError };
    } catch (error) {
      if (!(error instanceof ClientError) || error.code !== Status.UNAUTHENTICATED) throw error;
      lastError = `${Status[error.code]} (${error.details})`;
    }
    await sleep(500);
  }
  return { response: undefined, afterMs: Date.now() - started, lastError };
}

export const OIDC_CASES = [
  defineCase({
    id: "token.id-token-exchange",
    requirements: ["TOKEN-010", "TOKEN-020", "TOKEN-011", "TOKEN-015"],
    profile: "core",
    needs: ["oidc-provider"],
    async run(ctx) {
      const { main } = await requireIdTokens(ctx);
      const sub = ctx.uniqueId("idp-user");
      const deviceId = ctx.uniqueId("dev");
      // A long-lived ID token with a nonce the server never saw: both are the provider's and the app's business.
      const first = await exchange(ctx, await main.idToken({ sub, claims: { iat: nowSeconds() - 3000, exp: nowSeconds() + 3600 } }), { deviceId });
      checkEqual([first.subjectCreated, first.platform, first.issuedTokenType], [true, `platforms/${main.platformId}`, "urn:ietf:params:oauth:token-type:access_token"], "the first exchange of an ID token");
      checkEqual(first.device, `${first.subject}/devices/${deviceId}`, "ExchangeTokenResponse.device");
      const again = await exchange(ctx, await main.idToken({ sub, audience: [main.clientId], header: { typ: undefined } }));
      checkEqual([again.subject, again.subjectCreated], [first.subject, false], "a later ID token of the same sub (aud as an array, no typ)");
      for (const typ of ["jwt", "application/jwt"]) {
        const accepted = await exchange(ctx, await main.idToken({ sub, header: { typ } }));
        checkEqual(accepted.subject, first.subject, `an ID token with typ ${typ} (a media type: case and application/ do not matter)`);
      }
      const { subject } = await ctx.clients(again.accessToken).subjects.getSubject({ name: again.subject });
      checkEqual(subject?.name, first.subject, "GetSubject with the access token of an ID token");
      const other = await exchange(ctx, await main.idToken({ sub: ctx.uniqueId("idp-user") }));
      check(other.subject !== first.subject, "another sub is another account, so another subject");
      check(!lastSegment(first.subject).includes(sub), "the subject id must not be derived from sub");
    },
  }),
  defineCase({
    id: "token.id-token-issuer",
    requirements: ["TOKEN-020"],
    profile: "core",
    needs: ["oidc-provider"],
    async run(ctx) {
      const { main, rotating } = await requireIdTokens(ctx);
      const unknown: ExpectedError = { code: Status.UNAUTHENTICATED, reason: "PLATFORM_UNKNOWN" };
      const sub = ctx.uniqueId("idp-user");
      // Signed with the platform's own provider key: only `iss` is wrong (a multi-tenant provider's other tenant).
      for (const iss of ["https://evil.conformance.invalid", `${main.issuer}/`, main.issuer.toUpperCase(), `${main.issuer}/tenant-2`]) {
        await expectError(exchange(ctx, await main.idToken({ sub, claims: { iss } })), unknown, `an ID token with iss ${iss}, signed by the platform's provider`);
      }
      await expectError(exchange(ctx, await main.idToken({ sub, claims: { iss: undefined } })), INVALID, "an ID token without iss");
      // Another platform's issuer, with this platform's audience and provider key: its aud names the wrong client.
      await expectError(exchange(ctx, await main.idToken({ sub, claims: { iss: rotating.issuer } })), INVALID, "an ID token with another platform's issuer and this platform's client id");
      const ok = await exchange(ctx, await main.idToken({ sub }));
      checkEqual(ok.subjectCreated, true, "the refusals created nothing: the first valid exchange creates the subject");
    },
  }),
  defineCase({
    id: "token.id-token-audience",
    requirements: ["TOKEN-021", "TOKEN-020"],
    profile: "core",
    needs: ["oidc-provider"],
    async run(ctx) {
      const { main, rotating } = await requireIdTokens(ctx);
      const sub = ctx.uniqueId("idp-user");
      await expectError(exchange(ctx, await main.idToken({ sub, audience: "another-app" })), INVALID, "an ID token for another client");
      await expectError(exchange(ctx, await main.idToken({ sub, audience: [] })), INVALID, "an ID token with an empty aud");
      await expectError(exchange(ctx, await main.idToken({ sub, claims: { aud: undefined } })), INVALID, "an ID token without aud");
      await expectError(exchange(ctx, await main.idToken({ sub, audience: [main.clientId, "another-app"] })), INVALID, "an ID token for two clients without azp");
      await expectError(exchange(ctx, await main.idToken({ sub, claims: { azp: "another-app" } })), INVALID, "an ID token whose azp is another client");
      await expectError(exchange(ctx, await main.idToken({ sub, audience: rotating.clientId })), INVALID, "an ID token for another platform's client id");
      const ok = await exchange(ctx, await main.idToken({ sub, audience: ["another-app", main.clientId], claims: { azp: main.clientId } }));
      checkEqual([ok.platform, ok.subjectCreated], [`platforms/${main.platformId}`, true], "an ID token for two clients whose azp is the platform's");
    },
  }),
  defineCase({
    id: "token.id-token-signature",
    requirements: ["TOKEN-022"],
    profile: "core",
    needs: ["oidc-provider"],
    async run(ctx) {
      const oidc = await requireIdTokens(ctx);
      const { main } = oidc;
      const sub = ctx.uniqueId("idp-user");
      const published = await main.idToken({ sub });
      const publishedKid = JSON.parse(Buffer.from(published.split(".")[0] ?? "", "base64url").toString("utf8")).kid as string;
      const stranger = await main.unpublishedKey();
      await expectError(exchange(ctx, await main.idToken({ sub, key: { ...stranger, kid: publishedKid } })), INVALID, "an ID token signed with a key the provider does not publish, under a published kid");
      const [header, payload, signature] = published.split(".");
      const flipped = `${header}.${payload}.${signature!.startsWith("A") ? "B" : "A"}${signature!.slice(1)}`;
      await expectError(exchange(ctx, flipped), INVALID, "an ID token with an altered signature");
      const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${payload}.`;
      await expectError(exchange(ctx, none), INVALID, "an ID token with alg none");
      const hmac = await new SignJWT({ iss: main.issuer, sub, aud: main.clientId, iat: nowSeconds(), exp: nowSeconds() + 600 })
        .setProtectedHeader({ alg: "HS256", typ: "JWT", kid: publishedKid })
        .sign(new TextEncoder().encode(`${main.clientId}-secret-anyone-could-guess`));
      await expectError(exchange(ctx, hmac), INVALID, "an ID token signed with HS256");
      await expectError(exchange(ctx, "header.payload.signature"), INVALID, "an ID token that is not a JWS");
      for (const typ of ["continuity-assertion+jwt", "at+jwt"]) {
        await expectError(exchange(ctx, await main.idToken({ sub, header: { typ } })), INVALID, `a token of the provider with typ ${typ}`);
      }
      const jku = await main.idToken({ sub, key: oidc.attackerKey, header: { jku: oidc.attackerJwksUri } });
      await expectError(exchange(ctx, jku), INVALID, "an ID token signed with a key found through its own jku header");
      const embedded = await main.idToken({ sub, key: oidc.attackerKey, header: { jwk: oidc.attackerKey.publicJwk } });
      await expectError(exchange(ctx, embedded), INVALID, "an ID token signed with a key embedded in its jwk header");
      const ok = await exchange(ctx, await main.idToken({ sub }));
      checkEqual(ok.subjectCreated, true, "the refusals created nothing: the first valid exchange creates the subject");
    },
  }),
  defineCase({
    id: "token.id-token-time-and-sub",
    requirements: ["TOKEN-023", "TOKEN-020"],
    profile: "core",
    needs: ["oidc-provider"],
    async run(ctx) {
      const { main } = await requireIdTokens(ctx);
      const sub = ctx.uniqueId("idp-user");
      const now = nowSeconds();
      await expectError(exchange(ctx, await main.idToken({ sub, claims: { iat: now - 3600, exp: now - 60 } })), INVALID, "an ID token that expired 60 s ago");
      await expectError(exchange(ctx, await main.idToken({ sub, claims: { iat: now + 90, exp: now + 600 } })), INVALID, "an ID token issued 90 s in the future");
      await expectError(exchange(ctx, await main.idToken({ sub, claims: { nbf: now + 90 } })), INVALID, "an ID token not valid before 90 s from now");
      await expectError(exchange(ctx, await main.idToken({ sub, claims: { exp: undefined } })), INVALID, "an ID token without exp");
      await expectError(exchange(ctx, await main.idToken({ sub, claims: { iat: undefined } })), INVALID, "an ID token without iat");
      await expectError(exchange(ctx, await main.idToken({ sub, claims: { sub: undefined } })), INVALID, "an ID token without sub");
      await expectError(exchange(ctx, await main.idToken({ sub: "" })), INVALID, "an ID token with an empty sub");
      await expectError(exchange(ctx, await main.idToken({ sub: "s".repeat(256) })), INVALID, "an ID token with a sub of 256 characters");
      const withinSkew = await exchange(ctx, await main.idToken({ sub, claims: { iat: now - 600, exp: now - 10 } }));
      checkEqual(withinSkew.subjectCreated, true, "an ID token that expired 10 s ago (within the 30 s skew) is accepted");
      const longest = await exchange(ctx, await main.idToken({ sub: "s".repeat(255) }));
      check(longest.accessToken !== "", "a sub of 255 characters is accepted");
    },
  }),
  defineCase({
    id: "token.subject-token-type-mismatch",
    requirements: ["TOKEN-024", "TOKEN-010"],
    profile: "core",
    needs: ["oidc-provider"],
    async run(ctx) {
      const { main } = await requireIdTokens(ctx);
      const sub = ctx.uniqueId("idp-user");
      await expectError(exchange(ctx, await main.idToken({ sub }), { type: TOKEN_EXCHANGE.subjectTokenType }), WRONG_TYPE, "an ID token sent as urn:ietf:params:oauth:token-type:jwt");
      const accountId = ctx.uniqueId("acct");
      const assertion = await ctx.mintAssertion({ platform: ctx.platforms.a, accountId });
      await expectError(exchange(ctx, assertion), WRONG_TYPE, "a platform assertion sent as urn:ietf:params:oauth:token-type:id_token");
      // Checked before the signature: a forged assertion of the OIDC-only platform is refused for its type.
      const forged = await ctx.mintAssertion({ platform: ctx.platforms.a, accountId, issuer: main.platformId });
      await expectError(exchange(ctx, forged, { type: TOKEN_EXCHANGE.subjectTokenType }), WRONG_TYPE, "an assertion of a platform configured with an OpenID provider only");
      const ok = await exchange(ctx, assertion, { type: TOKEN_EXCHANGE.subjectTokenType });
      checkEqual(ok.subjectCreated, true, "the same assertion with its own type is accepted");
    },
  }),
  defineCase({
    id: "link.redeem-with-id-token",
    requirements: ["LINK-026", "LINK-015"],
    profile: "identity",
    needs: ["oidc-provider"],
    async run(ctx) {
      const { main } = await requireIdTokens(ctx);
      const owner = await ctx.session();
      const { code } = await owner.clients.subjects.createLinkCode({ parent: owner.subject });
      const sub = ctx.uniqueId("idp-user");
      const redeem = (subjectToken: string) => ctx.clients().subjects.redeemLinkCode({ subjectToken, code });
      await expectError(redeem(await main.idToken({ sub, audience: "another-app" })), INVALID, "RedeemLinkCode with an ID token for another client");
      await expectError(redeem(await main.idToken({ sub, claims: { iss: `${main.issuer}/` } })), { code: Status.UNAUTHENTICATED, reason: "PLATFORM_UNKNOWN" }, "RedeemLinkCode with an ID token of an unknown issuer");
      const { accountLink } = await redeem(await main.idToken({ sub }));
      checkEqual([accountLink?.platform, accountLink?.accountId], [`platforms/${main.platformId}`, sub], "the link made by an ID token (the refused ones did not consume the code)");
      const joined = await exchange(ctx, await main.idToken({ sub }));
      checkEqual([joined.subject, joined.subjectCreated], [owner.subject, false], "an exchange of that sub's ID token after the redemption");
    },
  }),
  defineCase({
    id: "token.id-token-jwks-cache-and-rotation",
    requirements: ["TOKEN-025"],
    profile: "core",
    needs: ["oidc-provider"],
    timeoutMs: 60_000,
    async run(ctx) {
      const { rotating } = await requireIdTokens(ctx);
      const sub = ctx.uniqueId("idp-user");
      const first = await exchange(ctx, await rotating.idToken({ sub }));
      const afterFirst = rotating.fetches;
      check(afterFirst >= 1, "the server fetched the provider's JWKS for the first ID token");
      for (let i = 0; i < 5; i++) await exchange(ctx, await rotating.idToken({ sub }));
      checkEqual(rotating.fetches, afterFirst, "JWKS fetches after five more ID tokens signed with a key the server holds");

      // The provider starts signing with a key it has just published.
      const next = await rotating.addKey();
      const rotated = await acceptedWithin(ctx, () => rotating.idToken({ sub, key: next }), 35_000);
      check(rotated.response !== undefined, `an ID token signed with a newly published key must be accepted within 35 s (30 s cooldown and slack); last answer: ${rotated.lastError}`);
      checkEqual(rotated.response.subject, first.subject, "the rotated key's ID token names the same account");
      ctx.note(`the new kid was accepted after ${rotated.afterMs} ms`);

      // A flood of unknown kids: at most one fetch per second, however many arrive.
      const before = rotating.fetches;
      const started = Date.now();
      for (let i = 0; i < 20; i++) {
        await expectError(exchange(ctx, await rotating.idToken({ sub, key: next, header: { kid: ctx.uniqueId("unknown-kid") } })), INVALID, "an ID token with a kid the provider never published");
      }
      const elapsedMs = Date.now() - started;
      const allowed = 1 + Math.floor(elapsedMs / 1000);
      const made = rotating.fetches - before;
      check(made <= allowed, `20 ID tokens with unknown kids in ${elapsedMs} ms made ${made} JWKS fetches; at most ${allowed} (one per second) are allowed`);
    },
  }),
  defineCase({
    id: "token.id-token-provider-unavailable",
    requirements: ["TOKEN-026"],
    profile: "core",
    needs: ["oidc-provider"],
    async run(ctx) {
      const { unreachable } = await requireIdTokens(ctx);
      const sub = ctx.uniqueId("idp-user");
      const started = Date.now();
      // The provider accepts the connection and never answers; the server's timeout is at most 5 s.
      await expectError(exchange(ctx, await unreachable.idToken({ sub })), { code: Status.UNAVAILABLE, reason: "IDENTITY_PROVIDER_UNAVAILABLE", metadataKeys: ["platform"] }, "an ID token whose provider's JWKS never answers");
      const elapsedMs = Date.now() - started;
      ctx.note(`answered after ${elapsedMs} ms`);
      check(elapsedMs <= 7_000, `the exchange must fail within the server's JWKS timeout (at most 5 s, with 2 s of slack), took ${elapsedMs} ms`);
    },
  }),
];
