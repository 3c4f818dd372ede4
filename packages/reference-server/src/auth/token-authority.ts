import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import {
  SignJWT,
  calculateJwkThumbprint,
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type JWTPayload,
  type JWTVerifyGetKey,
} from "jose";
import { ALL_SCOPES, type AuthContext, type Scope } from "./context.js";
import { AuthFailure, CLOCK_SKEW_SECONDS, type VerifiedAssertion } from "./credentials.js";
import { createIdTokenVerifier, type JwksCopies } from "./id-tokens.js";
import type { PlatformRegistry } from "./platforms.js";

/** The `typ` header every platform assertion must carry (RFC 8725 §3.11 explicit typing). */
export const ASSERTION_TYP = "continuity-assertion+jwt";
/** The `typ` header of access tokens (RFC 9068). */
export const ACCESS_TOKEN_TYP = "at+jwt";
/** Issuer and audience of access tokens; tokens are only ever for this server's own use. */
export const ACCESS_TOKEN_ISSUER = "continuity";
/** Algorithms a platform may sign with. Never `none`, never HS*: the server holds no shared secrets. */
export const ASSERTION_ALGORITHMS = ["ES256", "EdDSA", "RS256"] as const;
/** Longest an assertion may live (`exp - iat`); short enough that a leaked one soon stops mattering. */
export const MAX_ASSERTION_LIFETIME_SECONDS = 300;
/** Default access-token lifetime. */
export const DEFAULT_ACCESS_TOKEN_SECONDS = 900;

export { AuthFailure, CLOCK_SKEW_SECONDS } from "./credentials.js";
export type { AuthFailureReason, VerifiedAssertion } from "./credentials.js";

/** What goes into an access token. */
export interface AccessTokenClaims {
  readonly subjectId: string;
  readonly platformId: string;
  readonly deviceId: string | undefined;
  readonly scopes: ReadonlySet<Scope>;
}

/** An access token as handed to the client. */
export interface IssuedAccessToken {
  readonly token: string;
  readonly tokenId: string;
  readonly expiresAt: Date;
  readonly expiresInSeconds: number;
}

/**
 * Issues and verifies everything the server trusts: platform assertions coming in, access
 * tokens going out. It checks signatures and claims only; whether a subject, link or device
 * still exists is the auth middleware's job against the store.
 */
export interface TokenAuthority {
  /** Verifies a platform assertion; throws {@link AuthFailure} (ASSERTION_INVALID or PLATFORM_UNKNOWN). */
  verifyAssertion(assertion: string): Promise<VerifiedAssertion>;
  /**
   * Verifies the subject token of an exchange as the kind its `subject_token_type` names, or,
   * with `by-issuer` (RedeemLinkCode, which has no type field), as an ID token when its `iss`
   * is a configured OIDC issuer and as an assertion otherwise. Throws {@link AuthFailure},
   * {@link SubjectTokenKindRefused} or IdentityProviderUnavailable.
   */
  verifySubjectToken(token: string, kind: SubjectTokenKind | "by-issuer"): Promise<VerifiedAssertion>;
  /** True when some platform exchanges OIDC ID tokens (TOKEN-010 refuses the type otherwise). */
  readonly acceptsIdTokens: boolean;
  /** Signs a fresh access token. */
  issueAccessToken(claims: AccessTokenClaims): Promise<IssuedAccessToken>;
  /** Verifies an access token; throws {@link AuthFailure} (TOKEN_INVALID or TOKEN_EXPIRED). */
  verifyAccessToken(token: string): Promise<AuthContext>;
  /** The `aud` that assertions must carry (ServerInfo.assertion_audience). */
  readonly audience: string;
  /** Lifetime of issued access tokens (ServerInfo.limits.access_token_seconds). */
  readonly accessTokenSeconds: number;
  /** The configured platforms. */
  readonly platforms: PlatformRegistry;
  /** The server's public signing key, e.g. for publishing or for verifying bundle signatures. */
  readonly publicJwk: JWK;
  /** Signs arbitrary claims with the server key (bundle trailers in the portability profile). */
  readonly signingKey: CryptoKey;
}

/** The subject tokens an exchange takes: a platform assertion, or an ID token of a platform's OpenID provider. */
export type SubjectTokenKind = "assertion" | "id_token";

/**
 * The token's `iss` names a configured platform, but one that does not take this kind of
 * token (an ID token sent as an assertion, or the reverse): the request is wrong, not the
 * credential, so the exchange answers INVALID_FIELD on `subject_token_type` (TOKEN-024).
 */
export class SubjectTokenKindRefused extends Error {
  override readonly name = "SubjectTokenKindRefused";
}

/**
 * Where the server's signing key comes from. `dataDir` creates `<dataDir>/server-key.jwk`
 * (mode 0600) on first start and reuses it after, so tokens survive restarts; `file` loads an
 * operator-managed key and never writes; `ephemeral` is for tests and is lost on exit.
 */
export type SigningKeySource =
  | { readonly kind: "file"; readonly path: string }
  | { readonly kind: "data-dir"; readonly dataDir: string }
  | { readonly kind: "ephemeral" };

/** Options of {@link createTokenAuthority}. */
export interface TokenAuthorityOptions {
  readonly platforms: PlatformRegistry;
  readonly signingKey: SigningKeySource;
  /** `aud` required in assertions; default `continuity`. */
  readonly audience?: string;
  /** Access-token lifetime in seconds; default 900. */
  readonly accessTokenSeconds?: number;
  /** Injectable clock, so tests can age tokens without sleeping. */
  readonly now?: () => Date;
  /**
   * Where the OpenID providers' key sets are kept: the store, so that the servers of one store
   * fetch them as one server would (TOKEN-025). Default: this process's memory.
   */
  readonly jwksCopies?: JwksCopies;
}

/** Most verified access tokens remembered at once (a few hundred bytes each). */
export const VERIFIED_TOKEN_CACHE_ENTRIES = 4096;

/** File name of the generated server key inside the data directory. */
export const SERVER_KEY_FILE = "server-key.jwk";

/** Why the signing key could not be loaded; the message names the file. */
export class SigningKeyError extends Error {
  override readonly name = "SigningKeyError";
}

interface LoadedKey {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly kid: string;
}

async function importPrivateJwk(jwk: JWK, origin: string): Promise<LoadedKey> {
  if (jwk.kty !== "EC" || jwk.crv !== "P-256" || typeof jwk.d !== "string") {
    throw new SigningKeyError(`${origin} must be a private EC P-256 JWK (ES256)`);
  }
  if (typeof jwk.x !== "string" || typeof jwk.y !== "string") {
    throw new SigningKeyError(`${origin} lacks the public coordinates x and y`);
  }
  const publicJwk: JWK = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
  let privateKey: CryptoKey;
  let publicKey: CryptoKey;
  try {
    privateKey = (await importJWK(jwk, "ES256")) as CryptoKey;
    publicKey = (await importJWK(publicJwk, "ES256")) as CryptoKey;
  } catch (cause) {
    throw new SigningKeyError(`${origin} is not a usable ES256 key: ${(cause as Error).message}`, { cause });
  }
  const kid = jwk.kid ?? (await calculateJwkThumbprint(publicJwk));
  return { privateKey, publicKey, publicJwk: { ...publicJwk, kid, alg: "ES256", use: "sig" }, kid };
}

async function readKeyFile(path: string): Promise<LoadedKey> {
  let jwk: JWK;
  try {
    jwk = JSON.parse(await readFile(path, "utf8")) as JWK;
  } catch (cause) {
    throw new SigningKeyError(`cannot read signing key ${path}: ${(cause as Error).message}`, { cause });
  }
  return importPrivateJwk(jwk, `signing key ${path}`);
}

async function generateKey(): Promise<{ loaded: LoadedKey; privateJwk: JWK }> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const exported = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint({ kty: "EC", crv: "P-256", x: exported.x ?? "", y: exported.y ?? "" });
  const privateJwk: JWK = { ...exported, kid, alg: "ES256", use: "sig" };
  return { loaded: await importPrivateJwk(privateJwk, "generated key"), privateJwk };
}

async function loadSigningKey(source: SigningKeySource): Promise<LoadedKey> {
  switch (source.kind) {
    case "file":
      return readKeyFile(resolve(source.path));
    case "ephemeral":
      return (await generateKey()).loaded;
    case "data-dir": {
      const path = join(resolve(source.dataDir), SERVER_KEY_FILE);
      try {
        return await readKeyFile(path);
      } catch (error) {
        const missing = error instanceof SigningKeyError && (error.cause as NodeJS.ErrnoException | undefined)?.code === "ENOENT";
        if (!missing) throw error;
      }
      const { loaded, privateJwk } = await generateKey();
      await mkdir(dirname(path), { recursive: true });
      // `wx` so two servers racing on one fresh data dir cannot silently end up with different keys.
      try {
        await writeFile(path, `${JSON.stringify(privateJwk)}\n`, { mode: 0o600, flag: "wx" });
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === "EEXIST") return readKeyFile(path);
        throw new SigningKeyError(`cannot write signing key ${path}: ${(cause as Error).message}`, { cause });
      }
      await chmod(path, 0o600);
      return loaded;
    }
  }
}

const SCOPE_SET = new Set<string>(ALL_SCOPES);

/** Parses a space-separated scope string; undefined when a member is not a known scope. */
export function parseScopes(value: string): Set<Scope> | undefined {
  const scopes = new Set<Scope>();
  for (const part of value.split(" ")) {
    if (part === "") continue;
    if (!SCOPE_SET.has(part)) return undefined;
    scopes.add(part as Scope);
  }
  return scopes;
}

/** Formats scopes in the canonical order, so equal sets always print the same. */
export function formatScopes(scopes: ReadonlySet<Scope>): string {
  return ALL_SCOPES.filter((scope) => scopes.has(scope)).join(" ");
}

function newTokenId(): string {
  return randomBytes(16).toString("base64url");
}

function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

// Stryker disable all: describeJoseError only builds an AuthFailure's detail, which is for logs only; the wire carries the reason with a fixed message (wire-errors.ts)
function describeJoseError(error: unknown): string {
  if (error instanceof joseErrors.JOSEError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}
// Stryker restore all

/**
 * Creates the token authority: loads or creates the server key, and binds the platforms'
 * JWKS. Async because key import goes through WebCrypto.
 */
export async function createTokenAuthority(options: TokenAuthorityOptions): Promise<TokenAuthority> {
  const now = options.now ?? (() => new Date());
  const audience = options.audience ?? "continuity";
  const accessTokenSeconds = options.accessTokenSeconds ?? DEFAULT_ACCESS_TOKEN_SECONDS;
  if (!Number.isInteger(accessTokenSeconds) || accessTokenSeconds < 1) {
    throw new RangeError(`accessTokenSeconds must be a positive integer, got ${accessTokenSeconds}`);
  }
  const key = await loadSigningKey(options.signingKey);
  const keySets = new Map<string, JWTVerifyGetKey>();
  for (const platform of options.platforms.list()) {
    if (platform.jwks !== undefined) keySets.set(platform.id, createLocalJWKSet(platform.jwks));
  }
  const idTokens = createIdTokenVerifier(options.platforms, now, options.jwksCopies);

  async function verifySubjectToken(token: string, kind: SubjectTokenKind | "by-issuer"): Promise<VerifiedAssertion> {
    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch (cause) {
      throw new AuthFailure("ASSERTION_INVALID", `not a compact JWS: ${describeJoseError(cause)}`, { cause });
    }
    if (typeof issuer !== "string") throw new AuthFailure("ASSERTION_INVALID", "missing iss");
    const platformById = options.platforms.get(issuer);
    const oidcPlatforms = idTokens.platformsOfIssuer(issuer);
    if (kind === "by-issuer") return oidcPlatforms.length > 0 ? idTokens.verify(token) : verifyAssertion(token);
    if (kind === "assertion") {
      if ((platformById !== undefined && platformById.jwks === undefined) || oidcPlatforms.length > 0) {
        throw new SubjectTokenKindRefused(`the platform of issuer ${JSON.stringify(issuer.slice(0, 80))} takes no assertions`);
      }
      return verifyAssertion(token);
    }
    if (oidcPlatforms.length === 0 && platformById !== undefined) {
      throw new SubjectTokenKindRefused(`platform ${platformById.id} takes no ID tokens`);
    }
    return idTokens.verify(token);
  }

  async function verifyAssertion(assertion: string): Promise<VerifiedAssertion> {
    let unverified: JWTPayload;
    try {
      // Read unverified only to pick the key set; every claim is re-checked after the
      // signature below, against that platform's keys alone.
      decodeProtectedHeader(assertion);
      unverified = decodeJwt(assertion);
    } catch (cause) {
      throw new AuthFailure("ASSERTION_INVALID", `not a compact JWS: ${describeJoseError(cause)}`, { cause });
    }
    const issuer = unverified.iss;
    if (typeof issuer !== "string") throw new AuthFailure("ASSERTION_INVALID", "missing iss");
    const platform = options.platforms.get(issuer);
    const keySet = keySets.get(issuer);
    if (platform === undefined || keySet === undefined) {
      throw new AuthFailure("PLATFORM_UNKNOWN", `unknown platform ${JSON.stringify(issuer.slice(0, 80))}`);
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(assertion, keySet, {
        algorithms: [...ASSERTION_ALGORITHMS],
        typ: ASSERTION_TYP,
        issuer: platform.id,
        audience,
        clockTolerance: CLOCK_SKEW_SECONDS,
        // Also rejects an `iat` in the future beyond the skew.
        maxTokenAge: MAX_ASSERTION_LIFETIME_SECONDS,
        requiredClaims: ["iss", "sub", "aud", "iat", "exp", "jti"],
        currentDate: now(),
      }));
    } catch (cause) {
      throw new AuthFailure("ASSERTION_INVALID", describeJoseError(cause), { cause });
    }
    const { sub, jti, iat, exp } = payload;
    if (typeof iat !== "number" || typeof exp !== "number" || exp - iat > MAX_ASSERTION_LIFETIME_SECONDS) {
      throw new AuthFailure("ASSERTION_INVALID", `lifetime exceeds ${MAX_ASSERTION_LIFETIME_SECONDS} s`);
    }
    if (exp <= iat) throw new AuthFailure("ASSERTION_INVALID", "exp is not after iat");
    if (typeof sub !== "string" || sub.length < 1 || sub.length > 255) {
      throw new AuthFailure("ASSERTION_INVALID", "sub must be 1..255 characters");
    }
    if (typeof jti !== "string" || jti.length < 1 || jti.length > 255) {
      throw new AuthFailure("ASSERTION_INVALID", "jti must be 1..255 characters");
    }
    return { platform, accountId: sub, assertionId: jti, expiresAt: new Date(exp * 1000) };
  }

  async function issueAccessToken(claims: AccessTokenClaims): Promise<IssuedAccessToken> {
    const issuedAt = epochSeconds(now());
    const expiresAt = issuedAt + accessTokenSeconds;
    const tokenId = newTokenId();
    // `client_id` as RFC 9068 asks, next to the design's `plt`; both name the platform.
    const body: Record<string, string> = {
      plt: claims.platformId,
      client_id: claims.platformId,
      scope: formatScopes(claims.scopes),
    };
    if (claims.deviceId !== undefined) body["dev"] = claims.deviceId;
    const token = await new SignJWT(body)
      .setProtectedHeader({ alg: "ES256", typ: ACCESS_TOKEN_TYP, kid: key.kid })
      .setIssuer(ACCESS_TOKEN_ISSUER)
      .setAudience(ACCESS_TOKEN_ISSUER)
      .setSubject(claims.subjectId)
      .setJti(tokenId)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .sign(key.privateKey);
    return { token, tokenId, expiresAt: new Date(expiresAt * 1000), expiresInSeconds: accessTokenSeconds };
  }

  // Verified access tokens, least recently used first. A token's signature and claims never
  // change, so each is checked with ES256 once (~120 µs) and then found here; only expiry
  // depends on the time, and it is judged on every use exactly as jose judges it. Revocation
  // is not a property of the token: the auth middleware re-checks device, link and subject
  // against the store on every call. Keyed by the token's SHA-256, so that no bearer token
  // is kept in memory; bounded, so that a flood of distinct tokens costs bounded memory.
  const verified = new Map<string, { readonly context: AuthContext; readonly exp: number }>();

  async function verifyAccessToken(token: string): Promise<AuthContext> {
    const key = createHash("sha256").update(token).digest("base64");
    const hit = verified.get(key);
    if (hit !== undefined) {
      // jose's rule with clockTolerance 0: expired once `exp <= now` in whole seconds.
      if (hit.exp <= epochSeconds(now())) {
        verified.delete(key);
        throw new AuthFailure("TOKEN_EXPIRED", `"exp" claim timestamp check failed (cached)`);
      }
      verified.delete(key);
      verified.set(key, hit);
      return hit.context;
    }
    const context = await verifyAccessTokenSignature(token);
    verified.set(key, { context, exp: context.expiresAt.getTime() / 1000 });
    // Stryker disable next-line all: memory only: a token evicted sooner, later or never is verified again with the same result
    if (verified.size > VERIFIED_TOKEN_CACHE_ENTRIES) verified.delete(verified.keys().next().value!);
    return context;
  }

  async function verifyAccessTokenSignature(token: string): Promise<AuthContext> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key.publicKey, {
        algorithms: ["ES256"],
        typ: ACCESS_TOKEN_TYP,
        issuer: ACCESS_TOKEN_ISSUER,
        audience: ACCESS_TOKEN_ISSUER,
        // This server's own clock issued it, so there is no skew to tolerate: a token is
        // refused from the second `expires_in` says it ends (AUTH-003).
        clockTolerance: 0,
        requiredClaims: ["sub", "jti", "iat", "exp"],
        currentDate: now(),
      }));
    } catch (cause) {
      if (cause instanceof joseErrors.JWTExpired) {
        throw new AuthFailure("TOKEN_EXPIRED", describeJoseError(cause), { cause });
      }
      throw new AuthFailure("TOKEN_INVALID", describeJoseError(cause), { cause });
    }
    const { sub, jti, exp, plt, dev, scope } = payload;
    const scopes = typeof scope === "string" ? parseScopes(scope) : undefined;
    if (
      typeof sub !== "string" ||
      typeof jti !== "string" ||
      typeof exp !== "number" ||
      typeof plt !== "string" ||
      (dev !== undefined && typeof dev !== "string") ||
      scopes === undefined
    ) {
      throw new AuthFailure("TOKEN_INVALID", "claims have the wrong shape");
    }
    return {
      subjectId: sub,
      platformId: plt,
      deviceId: dev,
      scopes,
      tokenId: jti,
      expiresAt: new Date(exp * 1000),
    };
  }

  return {
    verifyAssertion,
    verifySubjectToken,
    acceptsIdTokens: idTokens.enabled,
    issueAccessToken,
    verifyAccessToken,
    audience,
    accessTokenSeconds,
    platforms: options.platforms,
    publicJwk: key.publicJwk,
    signingKey: key.privateKey,
  };
}
