import type { CallContext, ServerMiddleware, ServerMiddlewareCall } from "nice-grpc-common";
import { Status } from "nice-grpc-common";
import type { Logger } from "pino";
import type { Store } from "../store/types.js";
import type { AuthCallContextExt, AuthContext, Scope } from "./context.js";
import { AuthFailure, type TokenAuthority } from "./token-authority.js";
import { protocolError } from "../errors.js";
import { authFailureError } from "./wire-errors.js";

/** Request header naming the protocol version the client speaks. */
export const PROTOCOL_VERSION_HEADER = "continuity-protocol-version";
/** Versions this server speaks (ServerInfo.protocol_versions). */
export const SUPPORTED_PROTOCOL_VERSIONS = ["1"] as const;

/**
 * Methods callable without an access token: the token exchange itself, link-code redemption
 * (authenticated by the new platform's assertion), and negotiation. Everything else needs a
 * token, so a method added later is protected by default.
 */
export const PUBLIC_METHODS: ReadonlySet<string> = new Set([
  "/continuity.v1.TokenService/ExchangeToken",
  "/continuity.v1.SubjectService/RedeemLinkCode",
  "/continuity.v1.ServerInfoService/GetServerInfo",
]);

/** Infrastructure services outside the protocol: no token, no protocol-version check. */
const INFRASTRUCTURE_PREFIXES = ["/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"];

/** What the middleware needs; `ServiceDeps` satisfies it. */
export interface AuthMiddlewareDeps {
  readonly store: Pick<Store, "hasAccountLink" | "getDevice">;
  readonly tokens: Pick<TokenAuthority, "verifyAccessToken" | "platforms">;
  /** Told which check refused a token (debug level; never the token). */
  readonly logger?: Pick<Logger, "debug">;
}

function headerText(context: CallContext, name: string): string | undefined {
  const value = context.metadata.get(name);
  return typeof value === "string" ? value : undefined;
}

function bearerToken(context: CallContext): string {
  const header = headerText(context, "authorization");
  if (header === undefined || header.trim() === "") {
    // Stryker disable next-line StringLiteral: AuthFailure.detail is for logs only; the wire carries the reason and a fixed message (wire-errors.ts)
    throw new AuthFailure("TOKEN_MISSING", "no authorization header");
  }
  const match = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header);
  // Stryker disable next-line StringLiteral: AuthFailure.detail is for logs only; the wire carries the reason and a fixed message (wire-errors.ts)
  if (match?.[1] === undefined) throw new AuthFailure("TOKEN_INVALID", "authorization is not a Bearer token");
  return match[1];
}

/**
 * Refuses calls in a protocol version this server does not speak. Absent means `1`, so
 * clients that predate negotiation keep working.
 */
export function checkProtocolVersion(context: CallContext): void {
  const requested = headerText(context, PROTOCOL_VERSION_HEADER);
  if (requested === undefined || (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(requested.trim())) return;
  throw protocolError(
    Status.FAILED_PRECONDITION,
    "PROTOCOL_VERSION_UNSUPPORTED",
    // Stryker disable next-line MethodExpression: the status message only; clients never branch on it (ERR-007)
    `protocol version ${JSON.stringify(requested.slice(0, 32))} is not supported`,
    // Stryker disable next-line StringLiteral: with one supported version the separator never appears
    { supported: SUPPORTED_PROTOCOL_VERSIONS.join(",") },
  );
}

/**
 * Verifies the bearer token and re-checks it against the store: a token is a claim made at
 * exchange time, but erasure, unlinking and device revocation must take effect at once,
 * not when the token expires (AUTH-004, AUTH-007). The authority verifies each token's
 * signature once and judges its expiry on every call; the store may remember these facts
 * only until its next write, so a revocation is seen by the next call.
 */
export async function authenticate(token: string, deps: AuthMiddlewareDeps): Promise<AuthContext> {
  const claims = await deps.tokens.verifyAccessToken(token);
  const platform = deps.tokens.platforms.get(claims.platformId);
  if (platform === undefined) throw new AuthFailure("TOKEN_REVOKED", "platform no longer configured");
  // Account links cascade from their subject, so this one read also catches erasure.
  if (!(await deps.store.hasAccountLink(claims.subjectId, claims.platformId))) {
    // Stryker disable next-line StringLiteral: AuthFailure.detail is for logs only; the wire carries the reason and a fixed message (wire-errors.ts)
    throw new AuthFailure("TOKEN_REVOKED", "account link removed or subject erased");
  }
  if (claims.deviceId !== undefined) {
    const device = await deps.store.getDevice(claims.subjectId, claims.deviceId);
    // Stryker disable next-line StringLiteral: AuthFailure.detail is for logs only; the wire carries the reason and a fixed message (wire-errors.ts)
    if (device === undefined || device.revokedAt !== undefined) throw new AuthFailure("TOKEN_REVOKED", "device revoked");
  }
  // The operator may narrow a platform's scopes; tokens issued before follow at once.
  const scopes = new Set<Scope>([...claims.scopes].filter((scope) => platform.scopes.has(scope)));
  return { ...claims, scopes };
}

/**
 * The nice-grpc server middleware that puts {@link AuthContext} on `context.auth` for every
 * method outside {@link PUBLIC_METHODS}, and checks the protocol-version header. Failures
 * answer UNAUTHENTICATED with TOKEN_MISSING, TOKEN_INVALID, TOKEN_EXPIRED or TOKEN_REVOKED.
 *
 * Public methods get no `auth` member at run time even though the type promises one: their
 * handlers authenticate by assertion and must not read it.
 */
export function createAuthMiddleware(deps: AuthMiddlewareDeps): ServerMiddleware<AuthCallContextExt> {
  return async function* authMiddleware<Request, Response>(
    call: ServerMiddlewareCall<Request, Response, AuthCallContextExt>,
    context: CallContext,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const path = call.method.path;
    if (INFRASTRUCTURE_PREFIXES.some((prefix) => path.startsWith(prefix))) {
      return yield* call.next(call.request, context as CallContext & AuthCallContextExt);
    }
    checkProtocolVersion(context);
    if (PUBLIC_METHODS.has(path)) {
      return yield* call.next(call.request, context as CallContext & AuthCallContextExt);
    }
    let auth: AuthContext;
    try {
      auth = await authenticate(bearerToken(context), deps);
    } catch (error) {
      if (error instanceof AuthFailure) {
        deps.logger?.debug({ method: path, reason: error.reason, detail: error.detail }, "access token refused");
        throw authFailureError(error);
      }
      throw error;
    }
    return yield* call.next(call.request, { ...context, auth });
  };
}
