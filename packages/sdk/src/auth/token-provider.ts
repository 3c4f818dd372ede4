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
  Partial<Pick<ExchangeTokenRequest, "scope" | "deviceId" | "deviceDisplayName">>;

/** What the client hands a token provider each time it needs a token. */
export interface TokenRequestContext {
  /** Aborted when the call that needs the token is cancelled or times out. */
  readonly signal: AbortSignal | undefined;
  /** True when the server just refused the cached token as expired: do not return it again. */
  readonly forceRefresh: boolean;
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
  /** The installation's stable device id (`[a-z0-9-]`, 1–63 chars). Omit for an unbound token. */
  readonly deviceId?: string | undefined;
  /** Shown in device lists when the device is registered, e.g. "Ana's phone". */
  readonly deviceDisplayName?: string | undefined;
  /** Scopes to ask for; default: everything the platform may receive. */
  readonly scopes?: readonly string[] | undefined;
  /** Refresh this long before expiry so a call never leaves with a token about to lapse. Default 60 s. */
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
 *   address: "continuity.example.com:443",
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
  let cached: AccessToken | undefined;
  let inFlight: Promise<AccessToken> | undefined;

  const isFresh = (token: AccessToken): boolean =>
    token.expiresAt === undefined || token.expiresAt.getTime() - refreshBefore > now();

  async function exchange(context: TokenRequestContext): Promise<AccessToken> {
    const assertion = await options.getAssertion(context.signal);
    const issuedAt = now();
    const response = await context.exchangeToken(
      {
        subjectToken: assertion,
        scope: (options.scopes ?? []).join(" "),
        deviceId: options.deviceId ?? "",
        deviceDisplayName: options.deviceDisplayName ?? "",
      },
      context.signal,
    );
    return {
      token: response.accessToken,
      expiresAt: new Date(issuedAt + response.expiresIn * 1000),
      subject: response.subject,
      platform: response.platform,
      device: response.device === "" ? undefined : response.device,
      scopes: response.scope === "" ? [] : response.scope.split(" "),
    };
  }

  return {
    async getToken(context: TokenRequestContext): Promise<AccessToken> {
      if (context.forceRefresh) cached = undefined;
      if (cached !== undefined && isFresh(cached)) return cached;
      // One exchange serves every caller waiting at the same time. It runs without any one
      // caller's signal (the client's deadline bounds it), so a caller that gives up does
      // not fail the others; each caller still stops waiting when its own signal aborts.
      inFlight ??= exchange({ ...context, signal: undefined })
        .then((token) => {
          cached = token;
          return token;
        })
        .finally(() => {
          inFlight = undefined;
        });
      return abandonable(inFlight, context.signal);
    },
  };
}

function abandonable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      const error = new Error("The token request was abandoned", { cause: signal.reason });
      error.name = "AbortError";
      reject(error);
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/**
 * A provider for a token obtained elsewhere (tests, a server-side integration that already
 * holds one). It cannot refresh, so TOKEN_EXPIRED surfaces to the caller.
 */
export function createStaticTokenProvider(token: string | AccessToken): TokenProvider {
  const accessToken: AccessToken = typeof token === "string" ? { token, expiresAt: undefined } : token;
  return {
    getToken: () => Promise.resolve(accessToken),
  };
}
