import {
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type ProtectedHeaderParameters,
} from "jose";
import { OIDC_DEFAULTS, type PlatformConfig, type PlatformRegistry } from "./platforms.js";
import { AuthFailure, CLOCK_SKEW_SECONDS, type VerifiedAssertion } from "./credentials.js";

/**
 * Algorithms an ID token may be signed with: the assertion set (TOKEN-001), which covers what
 * OpenID providers sign with by default (RS256) and the common alternatives. Never `none`,
 * never HS*: an HS256 ID token is keyed with the client secret, which this server never holds.
 */
export const ID_TOKEN_ALGORITHMS = ["RS256", "ES256", "EdDSA"] as const;

/**
 * A platform's JWKS could not be fetched (refused connection, error status, not a JWKS, or no
 * answer within the timeout). Not the caller's fault, so never an authentication failure.
 */
export class IdentityProviderUnavailable extends Error {
  override readonly name = "IdentityProviderUnavailable";
  constructor(
    readonly platformId: string,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(`JWKS of platform ${platformId} unavailable: ${detail}`, options);
  }
}

/** Verifies OpenID Connect ID tokens against the providers of the platforms configured with one. */
export interface IdTokenVerifier {
  /** True when at least one platform has an OIDC provider; otherwise the token type is refused. */
  readonly enabled: boolean;
  /** The platforms whose provider has this exact issuer. */
  platformsOfIssuer(issuer: string): readonly PlatformConfig[];
  /**
   * Verifies an ID token; throws {@link AuthFailure} (ASSERTION_INVALID, PLATFORM_UNKNOWN) or
   * {@link IdentityProviderUnavailable}.
   */
  verify(token: string): Promise<VerifiedAssertion>;
}

// Stryker disable all: describe only builds the detail of an AuthFailure or IdentityProviderUnavailable, which is for logs only; the wire carries a fixed message
function describe(error: unknown): string {
  if (error instanceof joseErrors.JOSEError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
// Stryker restore all

/**
 * True for a failure to obtain the key set, as opposed to a token no key of a good set fits
 * (an unknown `kid` after the refetch, or two keys matching): jose throws plain JOSEError for
 * a non-200 answer or bad JSON, JWKSTimeout, JWKSInvalid, and lets fetch's TypeError through.
 */
function isKeySetFailure(error: unknown): boolean {
  if (error instanceof joseErrors.JWKSTimeout || error instanceof joseErrors.JWKSInvalid) return true;
  if (error instanceof joseErrors.JOSEError) return error.code === joseErrors.JOSEError.code;
  return true;
}

/**
 * One remote key set per platform, through jose's `createRemoteJWKSet`: it caches the set for
 * 10 minutes, refetches on an unknown `kid` at most once per cooldown, joins concurrent
 * fetches into one and gives up after the timeout. So no token, however many arrive, makes
 * the server fetch more than once per cooldown.
 */
function remoteKeySet(platform: PlatformConfig & { oidc: NonNullable<PlatformConfig["oidc"]> }): JWTVerifyGetKey {
  const remote = createRemoteJWKSet(platform.oidc.jwksUri, {
    timeoutDuration: platform.oidc.jwksTimeoutMs,
    cooldownDuration: platform.oidc.jwksCooldownMs,
    cacheMaxAge: OIDC_DEFAULTS.jwksCacheMaxAgeMs,
  });
  return async (header, token) => {
    try {
      return await remote(header, token);
    } catch (error) {
      if (isKeySetFailure(error)) throw new IdentityProviderUnavailable(platform.id, describe(error), { cause: error });
      throw error;
    }
  };
}

/** `typ` absent or `JWT` (RFC 7515 §4.1.9: case-insensitive, `application/` may be left out). */
function isPlainJwtType(header: ProtectedHeaderParameters): boolean {
  if (header.typ === undefined) return true;
  return header.typ.toLowerCase().replace(/^application\//, "") === "jwt";
}

/**
 * The platform an ID token is for, among those sharing its issuer: the one `azp` names when
 * it is present (OpenID Connect Core §2), else the one whose client id is in `aud`.
 */
function platformForAudience(candidates: readonly PlatformConfig[], claims: JWTPayload): PlatformConfig | undefined {
  const audiences = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  const azp = claims["azp"];
  if (typeof azp === "string") return candidates.find((platform) => platform.oidc?.clientId === azp);
  return candidates.find((platform) => audiences.includes(platform.oidc?.clientId ?? ""));
}

/** Builds the verifier; no key is fetched until the first ID token of a platform arrives. */
export function createIdTokenVerifier(platforms: PlatformRegistry, now: () => Date): IdTokenVerifier {
  const byIssuer = new Map<string, PlatformConfig[]>();
  const keySets = new Map<string, JWTVerifyGetKey>();
  for (const platform of platforms.list()) {
    const oidc = platform.oidc;
    if (oidc === undefined) continue;
    byIssuer.set(oidc.issuer, [...(byIssuer.get(oidc.issuer) ?? []), platform]);
    keySets.set(platform.id, remoteKeySet({ ...platform, oidc }));
  }

  async function verify(token: string): Promise<VerifiedAssertion> {
    let header: ProtectedHeaderParameters;
    let unverified: JWTPayload;
    try {
      // Read unverified only to pick the platform; every claim is checked again below,
      // after the signature, against that platform's provider alone.
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch (cause) {
      throw new AuthFailure("ASSERTION_INVALID", `not a compact JWS: ${describe(cause)}`, { cause });
    }
    const issuer = unverified.iss;
    if (typeof issuer !== "string") throw new AuthFailure("ASSERTION_INVALID", "missing iss");
    const candidates = byIssuer.get(issuer) ?? [];
    if (candidates.length === 0) {
      throw new AuthFailure("PLATFORM_UNKNOWN", `no platform has OIDC issuer ${JSON.stringify(issuer.slice(0, 80))}`);
    }
    const platform = platformForAudience(candidates, unverified);
    const oidc = platform?.oidc;
    const keySet = platform === undefined ? undefined : keySets.get(platform.id);
    if (platform === undefined || oidc === undefined || keySet === undefined) {
      throw new AuthFailure("ASSERTION_INVALID", "aud/azp name no client id configured for this issuer");
    }
    // An assertion (continuity-assertion+jwt) or an access token (at+jwt) is not an ID token,
    // even when its issuer's keys happen to verify it.
    if (!isPlainJwtType(header)) throw new AuthFailure("ASSERTION_INVALID", `typ ${JSON.stringify(header.typ)} is not JWT`);

    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keySet, {
        algorithms: [...ID_TOKEN_ALGORITHMS],
        issuer: oidc.issuer,
        audience: oidc.clientId,
        clockTolerance: CLOCK_SKEW_SECONDS,
        requiredClaims: ["iss", "sub", "aud", "exp", "iat"],
        currentDate: now(),
      }));
    } catch (cause) {
      if (cause instanceof IdentityProviderUnavailable) throw cause;
      throw new AuthFailure("ASSERTION_INVALID", describe(cause), { cause });
    }
    const { sub, iat, exp, aud, jti } = payload;
    const azp = payload["azp"];
    if (Array.isArray(aud) && aud.length > 1 && azp === undefined) {
      throw new AuthFailure("ASSERTION_INVALID", "aud has several values but no azp");
    }
    if (azp !== undefined && azp !== oidc.clientId) throw new AuthFailure("ASSERTION_INVALID", "azp is not the client id");
    // jose checks iat only against a maximum age; an ID token lives as long as its provider
    // says (exp), so only a future iat is refused here, with the same skew as assertions.
    if (typeof iat !== "number" || iat > Math.floor(now().getTime() / 1000) + CLOCK_SKEW_SECONDS) {
      throw new AuthFailure("ASSERTION_INVALID", "iat is in the future");
    }
    if (typeof sub !== "string" || sub.length < 1 || sub.length > 255) {
      throw new AuthFailure("ASSERTION_INVALID", "sub must be 1..255 characters");
    }
    return {
      platform,
      accountId: sub,
      assertionId: typeof jti === "string" ? jti.slice(0, 255) : "",
      expiresAt: new Date((exp as number) * 1000),
    };
  }

  return {
    enabled: byIssuer.size > 0,
    platformsOfIssuer: (issuer) => byIssuer.get(issuer) ?? [],
    verify,
  };
}
