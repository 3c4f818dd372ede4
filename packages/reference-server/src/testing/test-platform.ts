import { randomUUID } from "node:crypto";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { ALL_SCOPES, type Scope } from "../auth/context.js";
import type { PlatformConfig } from "../auth/platforms.js";
import { ASSERTION_TYP } from "../auth/token-authority.js";

/**
 * A platform for tests: a fresh ES256 key pair, its configuration entry, and a signer of
 * assertions exactly as a real platform backend would produce them.
 */
export interface TestPlatform {
  readonly id: string;
  readonly config: PlatformConfig;
  readonly publicJwk: JWK;
  /** Signs a valid assertion for `accountId`; `claims` override or (as undefined) drop claims. */
  assertion(accountId: string, options?: { readonly claims?: Record<string, unknown>; readonly key?: CryptoKey }): Promise<string>;
}

/** Creates a test platform with every scope unless `scopes` narrows it. */
export async function createTestPlatform(
  id: string,
  options: { readonly scopes?: readonly Scope[]; readonly audience?: string } = {},
): Promise<TestPlatform> {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = `${id}-key`;
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
  const audience = options.audience ?? "continuity";
  return {
    id,
    publicJwk,
    config: { id, displayName: id, jwks: { keys: [publicJwk] }, scopes: new Set(options.scopes ?? ALL_SCOPES) },
    async assertion(accountId, signOptions = {}) {
      const iat = Math.floor(Date.now() / 1000);
      const claims: Record<string, unknown> = {
        iss: id,
        aud: audience,
        sub: accountId,
        iat,
        exp: iat + 120,
        jti: randomUUID(),
        ...signOptions.claims,
      };
      for (const [key, value] of Object.entries(claims)) if (value === undefined) delete claims[key];
      return new SignJWT(claims).setProtectedHeader({ alg: "ES256", typ: ASSERTION_TYP, kid }).sign(signOptions.key ?? privateKey);
    },
  };
}
