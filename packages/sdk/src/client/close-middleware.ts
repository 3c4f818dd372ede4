import { Status, type CallOptions, type ClientMiddleware, type ClientMiddlewareCall } from "nice-grpc-common";
import { ContinuityError } from "../errors/continuity-error.js";
import type { ContinuityCallOptionsExt } from "../transport/transport.js";

/** The error of every call in flight or started after `close()`. */
export function clientClosedError(cause?: unknown): ContinuityError {
  return new ContinuityError({ code: Status.CANCELLED, reason: "CLIENT_CLOSED", message: "The client was closed", cause });
}

/**
 * Ends every call of a client when the client closes. Closing a grpc-js channel refuses new
 * calls but lets those in flight run on — a subscription for ever — so each call's signal is
 * tied to the client's, and what an aborted call throws becomes CANCELLED / CLIENT_CLOSED.
 * Outermost in the chain, so that every layer below (retry backoff, token exchange, the
 * wire) stops at once.
 */
export function createCloseMiddleware(closed: AbortSignal): ClientMiddleware<ContinuityCallOptionsExt> {
  return async function* closeMiddleware<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    options: CallOptions & Partial<ContinuityCallOptionsExt>,
  ): AsyncGenerator<Response, Response | void, undefined> {
    if (closed.aborted) throw clientClosedError();
    const signal = options.signal === undefined ? closed : AbortSignal.any([options.signal, closed]);
    try {
      return yield* call.next(call.request, { ...options, signal });
    } catch (error) {
      if (closed.aborted && options.signal?.aborted !== true) throw clientClosedError(error);
      throw error;
    }
  };
}
