import { importJWK, SignJWT, type CryptoKey, type JWK, type KeyObject } from "jose";
import { Status } from "nice-grpc-common";
import { ContinuityError } from "../errors/continuity-error.js";

/** The signature algorithms a Continuity server accepts for platform assertions (docs/spec/identity). */
export type AssertionAlgorithm = "ES256" | "EdDSA" | "RS256";

/** Options of `createAssertionSigner`. */
export interface AssertionSignerOptions {
  /** The platform id as the server knows it (the assertion's `iss`). */
  readonly platformId: string;
  /**
   * The platform's private signing key: a private JWK (its `kid`, when set, names the key in
   * the JWS header so the server picks it from the platform's JWKS), or a key jose accepts
   * (a Node `KeyObject`, a WebCrypto `CryptoKey`) together with `algorithm` and `keyId`.
   */
  readonly privateKey: JWK | KeyObject | CryptoKey;
  /** Needed for a key that is not a JWK; for a JWK, taken from its `alg` or its key type. */
  readonly algorithm?: AssertionAlgorithm | undefined;
  /** The `kid` header for a key that is not a JWK. */
  readonly keyId?: string | undefined;
  /** The server's assertion audience (`ServerInfo.assertion_audience`). Default `continuity`. */
  readonly audience?: string | undefined;
  /** Lifetime of each assertion in seconds, 1 to 300 (the server refuses longer). Default 120. */
  readonly lifetimeSeconds?: number | undefined;
}

/** Signs platform assertions; see `createAssertionSigner`. */
export interface AssertionSigner {
  /** The platform id the assertions are issued by. */
  readonly platformId: string;
  /**
   * A fresh assertion that the platform's user `accountId` (the platform's own account id,
   * 1 to 255 characters) is signed in: a compact JWS of type `continuity-assertion+jwt` with
   * `iss`, `aud`, `sub`, `iat`, `exp` and a random `jti`.
   */
  sign(accountId: string): Promise<string>;
}

const MAX_LIFETIME_SECONDS = 300;

/**
 * The platform's side of sign-in, for its backend: signs the short-lived assertion ("this is
 * our user `sub`") that an app exchanges for a Continuity access token. It runs where the
 * platform's private key is kept — never in the app — and the app fetches each assertion
 * from it (see `createAssertionTokenProvider`'s `getAssertion`). Signing is done by `jose`.
 *
 * @throws ContinuityError INVALID_ARGUMENT for a key that is not private, an algorithm the
 * server does not accept, or a lifetime outside 1..300 s.
 *
 * @example
 * ```ts
 * // The platform's backend (e.g. an Express route behind the platform's own login):
 * import { createAssertionSigner } from "@continuity/sdk/platform";
 *
 * const signer = await createAssertionSigner({
 *   platformId: "acme-courses",
 *   privateKey: JSON.parse(process.env.CONTINUITY_PLATFORM_JWK!),
 * });
 * app.get("/api/continuity-assertion", async (req, res) => {
 *   res.type("text/plain").send(await signer.sign(req.user.id));
 * });
 * ```
 */
export async function createAssertionSigner(options: AssertionSignerOptions): Promise<AssertionSigner> {
  const lifetime = options.lifetimeSeconds ?? 120;
  if (!Number.isInteger(lifetime) || lifetime < 1 || lifetime > MAX_LIFETIME_SECONDS) {
    throw invalid(`lifetimeSeconds must be an integer from 1 to ${MAX_LIFETIME_SECONDS}; got ${lifetime}`);
  }
  if (options.platformId === "") throw invalid("platformId is empty");
  const jwk = isJwk(options.privateKey) ? options.privateKey : undefined;
  const algorithm = options.algorithm ?? (jwk === undefined ? undefined : algorithmOf(jwk));
  if (algorithm === undefined || !["ES256", "EdDSA", "RS256"].includes(algorithm)) {
    throw invalid(`the assertion algorithm must be ES256, EdDSA or RS256; got ${String(algorithm)}`);
  }
  if (jwk !== undefined && jwk.d === undefined) throw invalid("privateKey is a public JWK; the platform signs with its private key");
  const key = jwk === undefined ? options.privateKey : await importJWK(jwk, algorithm);
  const keyId = options.keyId ?? jwk?.kid;
  const audience = options.audience ?? "continuity";
  return {
    platformId: options.platformId,
    async sign(accountId) {
      if (accountId.length < 1 || accountId.length > 255) throw invalid("accountId must be 1 to 255 characters");
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({})
        .setProtectedHeader({ alg: algorithm, typ: "continuity-assertion+jwt", ...(keyId === undefined ? {} : { kid: keyId }) })
        .setIssuer(options.platformId)
        .setAudience(audience)
        .setSubject(accountId)
        .setIssuedAt(now)
        .setExpirationTime(now + lifetime)
        .setJti(globalThis.crypto.randomUUID())
        .sign(key as Parameters<SignJWT["sign"]>[0]);
    },
  };
}

function isJwk(key: AssertionSignerOptions["privateKey"]): key is JWK {
  return typeof key === "object" && key !== null && "kty" in key && typeof (key as { kty?: unknown }).kty === "string";
}

function algorithmOf(jwk: JWK): AssertionAlgorithm | undefined {
  if (jwk.alg !== undefined) return jwk.alg as AssertionAlgorithm;
  if (jwk.kty === "EC" && jwk.crv === "P-256") return "ES256";
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "EdDSA";
  if (jwk.kty === "RSA") return "RS256";
  return undefined;
}

function invalid(message: string): ContinuityError {
  return new ContinuityError({ code: Status.INVALID_ARGUMENT, message: `createAssertionSigner: ${message}` });
}
