import { randomUUID } from "node:crypto";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { ALL_SCOPES, type Scope } from "../auth/context.js";
import type { PlatformConfig } from "../auth/platforms.js";
import { ASSERTION_TYP } from "../auth/token-authority.js";

/** Overrides for one assertion; `undefined` members are dropped from the claims/header. */
export interface AssertionOverrides {
  readonly header?: Record<string, unknown>;
  readonly claims?: Record<string, unknown>;
  /** Seconds relative to now for iat/exp. */
  readonly iatOffset?: number;
  readonly lifetime?: number;
  /** Sign with this key instead of the platform's own (a forgery). */
  readonly key?: CryptoKey;
}

/**
 * A platform for tests: a fresh ES256 key pair, its configuration entry, and a signer of
 * assertions exactly as a real platform backend would produce them — or, through the
 * overrides, as a broken or hostile one would.
 */
export interface TestPlatform {
  readonly id: string;
  readonly config: PlatformConfig;
  readonly publicJwk: JWK;
  readonly privateJwk: JWK;
  assertion(accountId: string, overrides?: AssertionOverrides): Promise<string>;
}

/** Creates a platform with a fresh ES256 key. */
export async function createTestPlatform(
  id: string,
  options: { scopes?: readonly Scope[]; audience?: string } = {},
): Promise<TestPlatform> {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = `${id}-test`;
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
  const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid, alg: "ES256", use: "sig" };
  const audience = options.audience ?? "continuity";
  return {
    id,
    publicJwk,
    privateJwk,
    config: { id, displayName: id, jwks: { keys: [publicJwk] }, oidc: undefined, scopes: new Set(options.scopes ?? ALL_SCOPES) },
    async assertion(accountId, overrides = {}) {
      const now = Math.floor(Date.now() / 1000) + (overrides.iatOffset ?? 0);
      const claims: Record<string, unknown> = {
        iss: id,
        aud: audience,
        sub: accountId,
        iat: now,
        exp: now + (overrides.lifetime ?? 120),
        jti: randomUUID(),
        ...overrides.claims,
      };
      const header: Record<string, unknown> = { alg: "ES256", typ: ASSERTION_TYP, kid, ...overrides.header };
      for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
      for (const [k, v] of Object.entries(header)) if (v === undefined) delete header[k];
      return new SignJWT(claims)
        .setProtectedHeader(header as { alg: string })
        .sign(overrides.key ?? privateKey);
    },
  };
}

/** An unsigned `alg: none` token with the given claims (must always be refused). */
export function unsecuredAssertion(claims: Record<string, unknown>): string {
  const enc = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${enc({ alg: "none", typ: ASSERTION_TYP })}.${enc(claims)}.`;
}
