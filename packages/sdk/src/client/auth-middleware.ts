import { Metadata, type CallOptions, type ClientMiddleware, type ClientMiddlewareCall } from "nice-grpc-common";
import type { AccessToken, TokenProvider, TokenRequestContext } from "../auth/token-provider.js";
import { ContinuityError } from "../errors/continuity-error.js";
import type { ContinuityCallOptionsExt } from "../transport/transport.js";

/** The protocol version this SDK speaks, sent on every call (server_info_service.proto). */
export const PROTOCOL_VERSION = "1";

/** What the auth middleware needs besides the provider. */
export interface AuthMiddlewareOptions {
  readonly tokenProvider: TokenProvider;
  readonly exchangeToken: TokenRequestContext["exchangeToken"];
  /** Bound of one shared token exchange, in milliseconds (the client's default deadline). */
  readonly exchangeTimeoutMs: number;
  readonly needsNoToken: (path: string) => boolean;
  /** Told about every token the middleware uses, so the client can report the session. */
  readonly onToken: (token: AccessToken) => void;
  /**
   * True for a token issued by a server the client has since left (`SUBJECT_MOVED`): it is
   * not sent, a fresh one is exchanged on the new server instead.
   */
  readonly isStale?: ((token: AccessToken) => boolean) | undefined;
}

/**
 * Adds `continuity-protocol-version` to every call and `authorization: Bearer` to every
 * call that needs a token. A call refused with TOKEN_EXPIRED (a token that lapsed in flight,
 * or a server clock ahead of ours) or TOKEN_INVALID (the server rotated its signing key) is
 * repeated once with a freshly exchanged token; that is safe for every method because the
 * server refused it before doing anything.
 */
export function createAuthMiddleware(options: AuthMiddlewareOptions): ClientMiddleware<ContinuityCallOptionsExt> {
  return async function* authMiddleware<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    callOptions: CallOptions & Partial<ContinuityCallOptionsExt>,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const metadata = Metadata(callOptions.metadata);
    metadata.set("continuity-protocol-version", PROTOCOL_VERSION);
    if (options.needsNoToken(call.method.path)) {
      return yield* call.next(call.request, { ...callOptions, metadata });
    }
    // A request stream can be consumed only once, so it cannot be replayed after a refusal.
    const attempts = call.requestStream ? 1 : 2;
    for (let attempt = 0; ; attempt += 1) {
      const request = (forceRefresh: boolean): Promise<AccessToken> =>
        options.tokenProvider.getToken({
          signal: callOptions.signal,
          forceRefresh,
          exchangeTimeoutMs: options.exchangeTimeoutMs,
          exchangeToken: options.exchangeToken,
        });
      let token = await request(attempt > 0);
      if (attempt === 0 && options.isStale?.(token) === true) token = await request(true);
      options.onToken(token);
      metadata.set("authorization", `Bearer ${token.token}`);
      let delivered = false;
      try {
        if (!call.responseStream) return yield* call.next(call.request, { ...callOptions, metadata });
        for await (const response of call.next(call.request, { ...callOptions, metadata })) {
          delivered = true;
          yield response;
        }
        return;
      } catch (error) {
        const reason = ContinuityError.from(error).reason;
        if (delivered || attempt + 1 >= attempts || (reason !== "TOKEN_EXPIRED" && reason !== "TOKEN_INVALID")) throw error;
      }
    }
  };
}
