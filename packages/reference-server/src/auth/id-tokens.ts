import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  type ProtectedHeaderParameters,
} from "jose";
import type { PlatformConfig, PlatformRegistry } from "./platforms.js";
import { checkKeyCount, discoverJwksUri, fetchProviderJson } from "./provider-documents.js";
import { AuthFailure, CLOCK_SKEW_SECONDS, type VerifiedAssertion } from "./credentials.js";
import type { JwksCopyRecord, ReplicaStateStore } from "../store/index.js";

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
  // Stryker disable next-line StringLiteral: the wire carries IDENTITY_PROVIDER_UNAVAILABLE with a fixed message (token-service.ts); the error's name, message and cause are for logs only
  override readonly name = "IdentityProviderUnavailable";
  constructor(
    readonly platformId: string,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    // Stryker disable next-line StringLiteral: the wire carries IDENTITY_PROVIDER_UNAVAILABLE with a fixed message (token-service.ts); the error's name, message and cause are for logs only
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

/** The key-set copies servers on one store share (ReplicaStateStore); in memory when alone. */
export type JwksCopies = Pick<ReplicaStateStore, "getJwksCopy" | "claimJwksFetch" | "putJwksCopy">;

/** Fetches of one platform's key set, by every server of a store together, at most one per this. */
export const JWKS_FETCH_INTERVAL_MS = 1_000;
/** How often a server waiting for another's fetch looks for its result. */
const JWKS_WAIT_POLL_MS = 100;

/** A store of copies for a server that shares them with nobody. */
export function createMemoryJwksCopies(): JwksCopies {
  const copies = new Map<string, { jwks?: string; fetchedAt: number; claimedAt: number }>();
  return {
    async getJwksCopy(platformId) {
      const copy = copies.get(platformId);
      return copy?.jwks === undefined ? undefined : { jwks: copy.jwks, fetchedAt: new Date(copy.fetchedAt) };
    },
    async claimJwksFetch(platformId, minIntervalMs, now) {
      const copy = copies.get(platformId) ?? { fetchedAt: 0, claimedAt: 0 };
      if (copy.claimedAt > now.getTime() - minIntervalMs) return false;
      copies.set(platformId, { ...copy, claimedAt: now.getTime() });
      return true;
    },
    async putJwksCopy(platformId, copy) {
      const kept = copies.get(platformId) ?? { fetchedAt: 0, claimedAt: 0 };
      if (kept.fetchedAt <= copy.fetchedAt.getTime()) copies.set(platformId, { ...kept, jwks: copy.jwks, fetchedAt: copy.fetchedAt.getTime() });
    },
  };
}

/**
 * One key set per platform, whose copy and time of fetch live in `copies`, so that the
 * servers of one store behave as one server (TOKEN-025): a server that never fetched uses the
 * copy another one fetched, the cooldown runs from the last fetch of any of them, and a fetch
 * is claimed in the store, so that however many tokens arrive at however many servers, the
 * provider is asked at most once per {@link JWKS_FETCH_INTERVAL_MS}.
 *
 * A copy is used as it is until it is `jwksRefreshMs` old. From then on the next token asks
 * for a fresh one (claimed, at most once per cooldown across the store); when the provider
 * cannot give one, the copy is still used until it is `jwksMaxStaleMs` old (TOKEN-028), and
 * past that the keys are unavailable until a fetch succeeds. A successful fetch replaces the
 * copy whole, so a key it no longer lists is refused from the next token on, on every server:
 * each token reads the store's copy first.
 */
function remoteKeySet(platform: PlatformConfig & { oidc: NonNullable<PlatformConfig["oidc"]> }, copies: JwksCopies): JWTVerifyGetKey {
  const timing = {
    timeoutDuration: platform.oidc.jwksTimeoutMs,
    cooldownDuration: platform.oidc.jwksCooldownMs,
    cacheMaxAge: platform.oidc.jwksRefreshMs,
    maxStale: platform.oidc.jwksMaxStaleMs,
  };
  let local: { readonly fetchedAt: number; readonly getKey: JWTVerifyGetKey } | undefined;
  let refreshing: Promise<void> | undefined;
  /** The JWKS URL its discovery document named (TOKEN-029), and when it was read. */
  let discovered: { readonly jwksUri: URL; readonly at: number } | undefined;
  const fetchedAt = (): number => local?.fetchedAt ?? Number.NEGATIVE_INFINITY;
  const age = (): number => Date.now() - fetchedAt();
  const fresh = (): boolean => age() < timing.cacheMaxAge;
  const usable = (): boolean => age() < timing.maxStale;
  const adopt = (copy: JwksCopyRecord | undefined): void => {
    if (copy === undefined || copy.fetchedAt.getTime() <= fetchedAt()) return;
    local = { fetchedAt: copy.fetchedAt.getTime(), getKey: createLocalJWKSet(JSON.parse(copy.jwks) as JSONWebKeySet) };
  };

  const jwksUri = async (deadline: number): Promise<URL> => {
    if (platform.oidc.jwksUri !== undefined) return platform.oidc.jwksUri;
    if (discovered !== undefined && Date.now() - discovered.at < timing.cacheMaxAge) return discovered.jwksUri;
    discovered = { jwksUri: await discoverJwksUri(platform.oidc.issuer, deadline), at: Date.now() };
    return discovered.jwksUri;
  };

  /** Fetches the key set (after the discovery document when there is no JWKS URL), all within the timeout. */
  const fetchKeySet = async (): Promise<void> => {
    const deadline = Date.now() + timing.timeoutDuration;
    const usedDiscovery = platform.oidc.jwksUri === undefined;
    try {
      const { json } = await fetchProviderJson(await jwksUri(deadline), deadline, "JWKS");
      checkKeyCount(json, "JWKS");
      // Throws JWKSInvalid for anything but a key set.
      const getKey = createLocalJWKSet(json as JSONWebKeySet);
      const at = Date.now();
      local = { fetchedAt: at, getKey };
      // Kept re-serialized: every token reads the copy, and a provider's padding is no part of it.
      await copies.putJwksCopy(platform.id, { jwks: JSON.stringify(json), fetchedAt: new Date(at) });
    } catch (error) {
      // The provider may have moved its keys: the next fetch reads its discovery document again.
      if (usedDiscovery) discovered = undefined;
      throw error;
    }
  };

  /**
   * A newer copy: another server's, or one this server fetches. `missing`: there is no usable
   * copy, so fetch (unclaimed: there is nothing to verify with until some server fetched).
   * `stale`: the copy is past its refresh age but usable; fetch if the claim for one cooldown
   * is had, else keep the copy. `unknown-kid`: claimed per {@link JWKS_FETCH_INTERVAL_MS}
   * (the flood guard), waiting for the fetch of the server that has the claim.
   */
  const refresh = async (why: "missing" | "stale" | "unknown-kid"): Promise<void> => {
    const had = fetchedAt();
    const deadline = Date.now() + timing.timeoutDuration;
    for (;;) {
      adopt(await copies.getJwksCopy(platform.id));
      if (fetchedAt() > had && fresh()) return;
      if (why === "missing") return fetchKeySet();
      if (why === "stale") return (await copies.claimJwksFetch(platform.id, timing.cooldownDuration, new Date())) ? fetchKeySet() : undefined;
      if (await copies.claimJwksFetch(platform.id, JWKS_FETCH_INTERVAL_MS, new Date())) return fetchKeySet();
      if (Date.now() >= deadline) throw new joseErrors.JWKSTimeout("another server's fetch of the JSON Web Key Set did not complete in time");
      await new Promise((resolve) => setTimeout(resolve, JWKS_WAIT_POLL_MS));
    }
  };
  // Concurrent tokens of this server share one refresh.
  const refreshOnce = (why: "missing" | "stale" | "unknown-kid"): Promise<void> => (refreshing ??= refresh(why).finally(() => (refreshing = undefined)));

  const getKey: JWTVerifyGetKey = async (header, token) => {
    adopt(await copies.getJwksCopy(platform.id));
    if (!usable()) await refreshOnce("missing");
    else if (!fresh()) {
      // The last good copy stands in while the provider cannot be reached (TOKEN-028).
      await refreshOnce("stale").catch((error: unknown) => {
        if (!isKeySetFailure(error) || !usable()) throw error;
      });
    }
    try {
      return await local!.getKey(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey)) throw error;
      // An unknown kid: the copy another server fetched since, else a fetch once the cooldown
      // since the last fetch (of any server) is over.
      const before = fetchedAt();
      adopt(await copies.getJwksCopy(platform.id));
      if (fetchedAt() === before && Date.now() - fetchedAt() < timing.cooldownDuration) throw error;
      if (fetchedAt() === before) await refreshOnce("unknown-kid");
      return await local!.getKey(header, token);
    }
  };
  return async (header, token) => {
    try {
      return await getKey(header, token);
    } catch (error) {
      // Stryker disable next-line ObjectLiteral: the wire carries IDENTITY_PROVIDER_UNAVAILABLE with a fixed message (token-service.ts); the error's name, message and cause are for logs only
      if (isKeySetFailure(error)) throw new IdentityProviderUnavailable(platform.id, describe(error), { cause: error });
      throw error;
    }
  };
}

/**
 * `typ` absent or `JWT` (RFC 7515 §4.1.9: case-insensitive, `application/` may be left out).
 * The header is unverified input: a `typ` that is no string is no media type.
 */
function isPlainJwtType(header: ProtectedHeaderParameters): boolean {
  const typ: unknown = header.typ;
  if (typ === undefined) return true;
  return typeof typ === "string" && typ.toLowerCase().replace(/^application\//, "") === "jwt";
}

/**
 * The platform an ID token is for, among those sharing its issuer: the one `azp` names when
 * it is present (OpenID Connect Core §2), else the one whose client id is in `aud`.
 */
function platformForAudience(candidates: readonly PlatformConfig[], claims: JWTPayload): PlatformConfig | undefined {
  // Stryker disable next-line ArrayDeclaration: a token whose aud is neither a string nor an array matches no client id either way
  const audiences = typeof claims.aud === "string" ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : [];
  const azp = claims["azp"];
  // Stryker disable next-line OptionalChaining: every candidate has an OpenID provider (byIssuer holds only those)
  if (typeof azp === "string") return candidates.find((platform) => platform.oidc?.clientId === azp);
  // Stryker disable next-line OptionalChaining,StringLiteral: every candidate has an OpenID provider (byIssuer holds only those)
  return candidates.find((platform) => audiences.includes(platform.oidc?.clientId ?? ""));
}

/** Builds the verifier; no key is fetched until the first ID token of a platform arrives. */
export function createIdTokenVerifier(platforms: PlatformRegistry, now: () => Date, copies: JwksCopies = createMemoryJwksCopies()): IdTokenVerifier {
  const byIssuer = new Map<string, PlatformConfig[]>();
  const keySets = new Map<string, JWTVerifyGetKey>();
  for (const platform of platforms.list()) {
    const oidc = platform.oidc;
    if (oidc === undefined) continue;
    byIssuer.set(oidc.issuer, [...(byIssuer.get(oidc.issuer) ?? []), platform]);
    keySets.set(platform.id, remoteKeySet({ ...platform, oidc }, copies));
  }

  async function verify(token: string): Promise<VerifiedAssertion> {
    let header: ProtectedHeaderParameters;
    let unverified: JWTPayload;
    try {
      // Read unverified only to pick the platform; every claim is checked again below,
      // after the signature, against that platform's provider alone.
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    // Stryker disable next-line BlockStatement: unreachable: verifySubjectToken decoded the token before it chose this verifier
    } catch (cause) {
      // Stryker disable next-line StringLiteral,ObjectLiteral: unreachable: verifySubjectToken decoded the token before it chose this verifier
      throw new AuthFailure("ASSERTION_INVALID", `not a compact JWS: ${describe(cause)}`, { cause });
    }
    const issuer = unverified.iss;
    // Stryker disable next-line all: unreachable: verifySubjectToken chose this verifier by the token's iss, a string
    if (typeof issuer !== "string") throw new AuthFailure("ASSERTION_INVALID", "missing iss");
    const candidates = byIssuer.get(issuer) ?? [];
    if (candidates.length === 0) {
      throw new AuthFailure("PLATFORM_UNKNOWN", `no platform has OIDC issuer ${JSON.stringify(issuer.slice(0, 80))}`);
    }
    const platform = platformForAudience(candidates, unverified);
    const oidc = platform?.oidc;
    const keySet = platform === undefined ? undefined : keySets.get(platform.id);
    // Stryker disable next-line all: without a platform jwtVerify gets no key set (or no issuer) and throws, which the catch below answers with the same ASSERTION_INVALID
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
      // Stryker disable next-line ObjectLiteral: the cause is for logs only; the wire carries the reason with a fixed message
      throw new AuthFailure("ASSERTION_INVALID", describe(cause), { cause });
    }
    const { sub, iat, exp, aud, jti } = payload;
    const azp = payload["azp"];
    if (Array.isArray(aud) && aud.length > 1 && azp === undefined) {
      throw new AuthFailure("ASSERTION_INVALID", "aud has several values but no azp");
    }
    // Stryker disable next-line all: unreachable: a present azp chose the platform (platformForAudience), so it is that platform's client id
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
      // Stryker disable next-line all: the assertion id goes to the logs only (token-service.ts)
      assertionId: typeof jti === "string" ? jti.slice(0, 255) : "",
      // Stryker disable next-line ArithmeticOperator: no caller reads an ID token's expiresAt; the access token has its own lifetime
      expiresAt: new Date((exp as number) * 1000),
    };
  }

  return {
    enabled: byIssuer.size > 0,
    platformsOfIssuer: (issuer) => byIssuer.get(issuer) ?? [],
    verify,
  };
}
