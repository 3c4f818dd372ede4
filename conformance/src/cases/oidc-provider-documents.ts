import { TOKEN_EXCHANGE, type CaseContext } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkEqual, expectError, Status, type ExpectedError } from "../harness/expect.js";
import { OVERSIZED_PADDING_BYTES, SPAWN_FLAKY_MAX_STALE_MS, SPAWN_FLAKY_REFRESH_MS, SPAWN_JWKS_TIMEOUT_MS } from "../harness/oidc-provider.js";
import { requireIdTokens } from "./oidc.js";

// What the server does with the documents of a provider that misbehaves (auth.md, TOKEN-026
// to TOKEN-030): the suite's hosted providers each serve one fault (harness/oidc-provider.ts).

const INVALID: ExpectedError = { code: Status.UNAUTHENTICATED, reason: "ASSERTION_INVALID" };
const UNAVAILABLE: ExpectedError = { code: Status.UNAVAILABLE, reason: "IDENTITY_PROVIDER_UNAVAILABLE", metadataKeys: ["platform"] };
function exchange(ctx: CaseContext, subjectToken: string) {
  return ctx.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken, subjectTokenType: TOKEN_EXCHANGE.idTokenType, scope: "", deviceId: "", deviceDisplayName: "" });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const OIDC_PROVIDER_DOCUMENT_CASES = [
  defineCase({
    id: "oidc.jwks-size-and-key-count-capped",
    requirements: ["TOKEN-027", "TOKEN-026"],
    profile: "core",
    needs: ["oidc-provider"],
    timeoutMs: 30_000,
    async run(ctx) {
      const { oversized, crowded } = await requireIdTokens(ctx);
      // Both key sets hold the key that signed the token: only their size makes them unusable.
      await expectError(exchange(ctx, await oversized.idToken({ sub: ctx.uniqueId("idp-user") })), UNAVAILABLE, "an ID token whose provider sends its JWKS followed by 64 MiB of whitespace");
      await sleep(200);
      const { oversizedBytesSent: sent } = ctx.oidcProvider();
      ctx.note(`the provider had sent ${sent} bytes when the server went away`);
      // Loopback socket buffers and the client's read-ahead take several MiB the server never reads (7 MB seen).
      check(sent < OVERSIZED_PADDING_BYTES / 2, `the server must abort the request once the JWKS passes 1 MiB; it let the provider send ${sent} bytes`);
      await expectError(exchange(ctx, await crowded.idToken({ sub: ctx.uniqueId("idp-user") })), UNAVAILABLE, "an ID token whose provider publishes 101 keys");
    },
  }),
  defineCase({
    id: "oidc.jwks-trickling-body-times-out",
    requirements: ["TOKEN-026"],
    profile: "core",
    needs: ["oidc-provider"],
    async run(ctx) {
      const { trickling } = await requireIdTokens(ctx);
      const started = Date.now();
      // Headers at once, then a space every 100 ms: a body that never completes.
      await expectError(exchange(ctx, await trickling.idToken({ sub: ctx.uniqueId("idp-user") })), UNAVAILABLE, "an ID token whose provider's JWKS body never ends");
      const elapsedMs = Date.now() - started;
      ctx.note(`answered after ${elapsedMs} ms`);
      check(elapsedMs <= SPAWN_JWKS_TIMEOUT_MS + 3_000, `the fetch timeout covers the body: the exchange must fail within ${SPAWN_JWKS_TIMEOUT_MS} ms and 3 s of slack, took ${elapsedMs} ms`);
    },
  }),
  defineCase({
    id: "oidc.jwks-last-good-copy-and-withdrawn-keys",
    requirements: ["TOKEN-028", "TOKEN-026"],
    profile: "core",
    needs: ["oidc-provider"],
    timeoutMs: 40_000,
    async run(ctx) {
      const { flaky } = await requireIdTokens(ctx);
      const sub = ctx.uniqueId("idp-user");
      const first = await exchange(ctx, await flaky.idToken({ sub }));
      // The server's copy was fetched before this moment, so waits measured from it are long enough.
      const fetched = Date.now();
      flaky.mode = "down";
      await sleep(SPAWN_FLAKY_REFRESH_MS + 300);
      const standIn = await exchange(ctx, await flaky.idToken({ sub }));
      checkEqual(standIn.subject, first.subject, "an ID token while the provider is down and the copy is past its refresh age (the last good copy stands in)");
      check(flaky.fetches >= 2, `the server must have tried to refresh its copy past the refresh age (fetches: ${flaky.fetches})`);
      await sleep(Math.max(0, SPAWN_FLAKY_MAX_STALE_MS + 500 - (Date.now() - fetched)));
      await expectError(exchange(ctx, await flaky.idToken({ sub })), UNAVAILABLE, `an ID token while the provider is down and the copy is older than the maximum staleness (${SPAWN_FLAKY_MAX_STALE_MS} ms)`);

      // Back up, having rotated: the old key is gone from the first good fetch on.
      const oldKey = flaky.published[0]!;
      const old = await flaky.idToken({ sub, key: oldKey });
      const next = await flaky.addKey();
      flaky.withdraw(oldKey);
      flaky.mode = "serve";
      await expectError(exchange(ctx, old), INVALID, "an ID token signed with a key the provider's new JWKS no longer lists");
      checkEqual((await exchange(ctx, await flaky.idToken({ sub, key: next }))).subject, first.subject, "an ID token signed with the provider's new key");

      // A withdrawal while the copy is still usable: the refresh past the refresh age drops it.
      const newest = await flaky.addKey();
      flaky.withdraw(next);
      await sleep(SPAWN_FLAKY_REFRESH_MS + 300);
      await expectError(exchange(ctx, await flaky.idToken({ sub, key: next })), INVALID, "an ID token signed with a key withdrawn since the server's last fetch, once its copy is past the refresh age");
      checkEqual((await exchange(ctx, await flaky.idToken({ sub, key: newest }))).subject, first.subject, "an ID token signed with the key that replaced it");
    },
  }),
  defineCase({
    id: "oidc.discovery",
    requirements: ["TOKEN-029"],
    profile: "core",
    needs: ["oidc-provider"],
    async run(ctx) {
      const { discovered, impostor } = await requireIdTokens(ctx);
      const ok = await exchange(ctx, await discovered.idToken({ sub: ctx.uniqueId("idp-user") }));
      checkEqual(ok.platform, `platforms/${discovered.platformId}`, "an ID token of a platform configured with its issuer only (its JWKS found through discovery)");
      check(discovered.discoveries >= 1 && discovered.fetches >= 1, `the server read the discovery document and then the JWKS it names (documents: ${discovered.discoveries}, JWKS: ${discovered.fetches})`);
      await expectError(exchange(ctx, await impostor.idToken({ sub: ctx.uniqueId("idp-user") })), UNAVAILABLE, "an ID token whose issuer's discovery document names another issuer");
      checkEqual(impostor.fetches, 0, "JWKS fetches made on the word of a discovery document that names another issuer");
    },
  }),
  defineCase({
    id: "oidc.id-token-without-kid",
    requirements: ["TOKEN-030"],
    profile: "core",
    needs: ["oidc-provider"],
    async run(ctx) {
      const { main, paired } = await requireIdTokens(ctx);
      const sub = ctx.uniqueId("idp-user");
      const single = await exchange(ctx, await main.idToken({ sub, header: { kid: undefined } }));
      check(single.accessToken !== "", "an ID token without kid, from a provider with one key");
      await exchange(ctx, await paired.idToken({ sub }));
      await expectError(exchange(ctx, await paired.idToken({ sub, header: { kid: undefined } })), INVALID, "an ID token without kid, from a provider with two RS256 keys");
    },
  }),
];
