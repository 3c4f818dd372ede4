import { createPrivateKey, randomUUID, sign, type JsonWebKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";

/**
 * What a platform's backend does for Continuity, in a few lines: it signs short-lived
 * assertions ("this is our user `sub`") with the platform's private key. In production
 * this runs on the platform's servers and the app fetches the assertion; the SDK only ever
 * sees the assertion, never the key. Examples and tests run it in-process.
 */
export interface PlatformBackend {
  /** The platform id (the assertion's `iss`). */
  readonly platformId: string;
  /** A fresh assertion for the platform's account `accountId`. */
  assert(accountId: string): Promise<string>;
}

/** Options of `createPlatformBackend`. */
export interface PlatformBackendOptions {
  /** Platform id as configured on the server. */
  readonly platformId: string;
  /** The platform's private signing key: a private ES256 JWK (with `kid`), or a path to one. */
  readonly privateJwk: (JsonWebKey & { kid?: string }) | string;
  /** The server's assertion audience. Default `continuity`. */
  readonly audience?: string;
  /** Assertion lifetime in seconds (at most 300). Default 120. */
  readonly lifetimeSeconds?: number;
}

/** Creates an ES256 assertion signer for one platform. */
export async function createPlatformBackend(options: PlatformBackendOptions): Promise<PlatformBackend> {
  const jwk =
    typeof options.privateJwk === "string"
      ? (JSON.parse(await readFile(options.privateJwk, "utf8")) as JsonWebKey & { kid?: string })
      : options.privateJwk;
  const key: KeyObject = createPrivateKey({ key: jwk, format: "jwk" });
  const lifetime = options.lifetimeSeconds ?? 120;
  return {
    platformId: options.platformId,
    assert(accountId) {
      const now = Math.floor(Date.now() / 1000);
      const header = { alg: "ES256", typ: "continuity-assertion+jwt", ...(jwk.kid === undefined ? {} : { kid: jwk.kid }) };
      const claims = {
        iss: options.platformId,
        aud: options.audience ?? "continuity",
        sub: accountId,
        iat: now,
        exp: now + lifetime,
        jti: randomUUID(),
      };
      const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
      // JWS ES256 wants the raw r||s signature (IEEE P1363), not DER.
      const signature = sign("sha256", Buffer.from(signingInput), { key, dsaEncoding: "ieee-p1363" });
      return Promise.resolve(`${signingInput}.${signature.toString("base64url")}`);
    },
  };
}

function base64url(text: string): string {
  return Buffer.from(text, "utf8").toString("base64url");
}
