import { Status } from "nice-grpc-common";
import { abandonable } from "../client/backoff.js";
import { ContinuityError } from "../errors/continuity-error.js";
import type { ExchangeTokenRequest, ExchangeTokenResponse } from "../gen/continuity/v1/token_service.js";

/** An access token and what the server said about it when it was issued. */
export interface AccessToken {
  /** The compact JWS sent as `authorization: Bearer <token>`; opaque to the SDK. */
  readonly token: string;
  /** When the server stops accepting it; undefined when unknown (a static token). */
  readonly expiresAt: Date | undefined;
  /** `subjects/{subject}` the token acts for, when known. */
  readonly subject?: string | undefined;
  /** `platforms/{platform}` the token acts for, when known. */
  readonly platform?: string | undefined;
  /** `subjects/{subject}/devices/{device}` the token is bound to, when known and bound. */
  readonly device?: string | undefined;
  /** Granted scopes, when known. */
  readonly scopes?: readonly string[] | undefined;
}

/** The fields of an ExchangeToken call a token provider chooses; the SDK fills in the rest. */
export type TokenExchangeParams = Pick<ExchangeTokenRequest, "subjectToken"> &
  Partial<Pick<ExchangeTokenRequest, "subjectTokenType" | "scope" | "deviceId" | "deviceDisplayName">>;

/** What the client hands a token provider each time it needs a token. */
export interface TokenRequestContext {
  /** Aborted when the call that needs the token is cancelled or times out. */
  readonly signal: AbortSignal | undefined;
  /** True when the server just refused the cached token as expired: do not return it again. */
  readonly forceRefresh: boolean;
  /**
   * How long one shared exchange (the assertion included) may take before it is abandoned,
   * in milliseconds; the client passes its `deadlineMs`. Bounding it matters because every
   * caller waits on the same exchange: one that never settles would block the client forever.
   */
  readonly exchangeTimeoutMs?: number | undefined;
  /** Calls TokenService.ExchangeToken on the same connection, with the client's deadline. */
  exchangeToken(params: TokenExchangeParams, signal: AbortSignal | undefined): Promise<ExchangeTokenResponse>;
}

/**
 * Where the client gets the bearer token for each call. The client asks before every call,
 * so a provider caches; it is told about a token the server refused with TOKEN_EXPIRED via
 * `forceRefresh` and retries that call once.
 */
export interface TokenProvider {
  /** Returns a token that is valid now. */
  getToken(context: TokenRequestContext): Promise<AccessToken>;
}

/** Options of `createAssertionTokenProvider`. */
export interface AssertionTokenProviderOptions {
  /**
   * Returns a fresh platform assertion (a compact JWS, `typ` `continuity-assertion+jwt`)
   * for the signed-in user. In production the platform's backend signs it and the app fetches
   * it: the SDK never holds a platform's signing key.
   */
  readonly getAssertion: (signal: AbortSignal | undefined) => Promise<string>;
  /**
   * What `getAssertion` returns, as an RFC 8693 token type. Default
   * `urn:ietf:params:oauth:token-type:jwt`, a platform assertion. A platform the server
   * knows by its OpenID provider returns the user's ID token instead and sets
   * `urn:ietf:params:oauth:token-type:id_token`.
   */
  readonly subjectTokenType?: string | undefined;
  /** The installation's stable device id (`[a-z0-9-]`, 1–63 chars). Omit for an unbound token. */
  readonly deviceId?: string | undefined;
  /** Shown in device lists when the device is registered, e.g. "Ana's phone". */
  readonly deviceDisplayName?: string | undefined;
  /** Scopes to ask for; default: everything the platform may receive. */
  readonly scopes?: readonly string[] | undefined;
  /**
   * Refresh this long before expiry so a call never leaves with a token about to lapse.
   * Default 60 s; capped at half the token's lifetime, so a short-lived token is still reused.
   */
  readonly refreshBeforeExpiryMs?: number | undefined;
  /** Clock, for tests. */
  readonly now?: (() => number) | undefined;
}

/**
 * The production token provider: exchanges platform assertions for access tokens (RFC 8693
 * style) and caches the result. It refreshes proactively shortly before expiry, and
 * concurrent calls share one exchange instead of stampeding the server.
 *
 * @example
 * ```ts
 * const client = createContinuityClient({
 *   address: "https://continuity.example.com",
 *   tokenProvider: createAssertionTokenProvider({
 *     deviceId: "laptop-7f3a",
 *     getAssertion: async () => (await fetch("/api/continuity-assertion")).text(),
 *   }),
 * });
 * ```
 */
export function createAssertionTokenProvider(options: AssertionTokenProviderOptions): TokenProvider {
  const now = options.now ?? Date.now;
  const refreshBefore = options.refreshBeforeExpiryMs ?? 60_000;
  let cached: CachedToken | undefined;
  let inFlight: Promise<AccessToken> | undefined;

  async function exchange(context: TokenRequestContext): Promise<CachedToken> {
    const assertion = await options.getAssertion(context.signal);
    const issuedAt = now();
    const response = await context.exchangeToken(
      {
        subjectToken: assertion,
        ...(options.subjectTokenType === undefined ? {} : { subjectTokenType: options.subjectTokenType }),
        scope: (options.scopes ?? []).join(" "),
        deviceId: options.deviceId ?? "",
        deviceDisplayName: options.deviceDisplayName ?? "",
      },
      context.signal,
    );
    const lifetimeMs = response.expiresIn * 1000;
    const expiresAt = new Date(issuedAt + lifetimeMs);
    const token: AccessToken = {
      token: response.accessToken,
      expiresAt,
      subject: response.subject,
      platform: response.platform,
      device: response.device === "" ? undefined : response.device,
      scopes: response.scope === "" ? [] : response.scope.split(" "),
    };
    // Without the cap, a token living no longer than the margin would count as stale the
    // moment it arrives, and every call would pay for a fresh exchange.
    return { token, refreshAt: expiresAt.getTime() - Math.min(refreshBefore, lifetimeMs / 2) };
  }

  // The shared exchange gets its own deadline: getAssertion is the app's code and may ignore
  // its signal, so the exchange is raced against a timer rather than trusted to stop.
  function boundedExchange(context: TokenRequestContext): Promise<CachedToken> {
    const timeoutMs = context.exchangeTimeoutMs ?? DEFAULT_EXCHANGE_TIMEOUT_MS;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const error = new ContinuityError({
          code: Status.DEADLINE_EXCEEDED,
          message: `The token exchange (assertion included) did not finish within ${timeoutMs} ms`,
        });
        controller.abort(error);
        reject(error);
      }, timeoutMs);
    });
    return Promise.race([exchange({ ...context, signal: controller.signal }), expired]).finally(() => clearTimeout(timer));
  }

  return {
    async getToken(context: TokenRequestContext): Promise<AccessToken> {
      if (context.forceRefresh) cached = undefined;
      if (cached !== undefined && cached.refreshAt > now()) return cached.token;
      // One exchange serves every caller waiting at the same time. It runs without any one
      // caller's signal but under its own deadline, so a caller that gives up does not fail
      // the others, and a failed or timed-out exchange is forgotten and retried by the next
      // caller; each caller still stops waiting when its own signal aborts.
      if (inFlight === undefined) {
        const current = boundedExchange(context)
          .then((exchanged) => {
            cached = exchanged;
            return exchanged.token;
          })
          .finally(() => {
            if (inFlight === current) inFlight = undefined;
          });
        inFlight = current;
      }
      return abandonable(inFlight, context.signal, abandonedTokenRequest);
    },
  };
}

const DEFAULT_EXCHANGE_TIMEOUT_MS = 10_000;

/** An exchanged token and the clock reading (ms) from which it is no longer handed out. */
interface CachedToken {
  readonly token: AccessToken;
  readonly refreshAt: number;
}

/** A caller that stops waiting gets an AbortError of its own; the shared exchange carries on for the others. */
function abandonedTokenRequest(signal: AbortSignal): Error {
  const error = new Error("The token request was abandoned", { cause: signal.reason });
  error.name = "AbortError";
  return error;
}

/**
 * A provider for a token obtained elsewhere (tests, a server-side integration that already
 * holds one). It cannot refresh, so TOKEN_EXPIRED surfaces to the caller.
 *
 * @example
 * ```ts
 * const client = createContinuityClient({
 *   address: "https://continuity.example.com",
 *   tokenProvider: createStaticTokenProvider({ token: process.env.CONTINUITY_TOKEN!, expiresAt: undefined, subject: "subjects/01jd8k2m" }),
 * });
 * ```
 */
export function createStaticTokenProvider(token: string | AccessToken): TokenProvider {
  const accessToken: AccessToken = typeof token === "string" ? { token, expiresAt: undefined } : token;
  return {
    getToken: () => Promise.resolve(accessToken),
  };
}
