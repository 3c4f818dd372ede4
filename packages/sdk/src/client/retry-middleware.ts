import { ClientError, Status, type CallOptions, type ClientMiddleware, type ClientMiddlewareCall } from "nice-grpc-common";
import type { ContinuityCallOptionsExt } from "../transport/transport.js";
import { backoffDelayMs, sleep, type BackoffOptions } from "./backoff.js";

/** Options of `createRetryMiddleware`. */
export interface RetryOptions extends BackoffOptions {
  /** Attempts in total, the first included. Default 4; 1 turns retrying off. */
  readonly maxAttempts?: number | undefined;
}

const TRANSIENT: ReadonlySet<Status> = new Set([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]);

/**
 * Repeats calls that failed with UNAVAILABLE or DEADLINE_EXCEEDED — but only calls for which
 * `isSafe` says a repeat cannot change the effect, and only for server streams that have not
 * yet delivered a message (a repeat would deliver it twice).
 */
export function createRetryMiddleware(
  isSafe: (path: string) => boolean,
  options: RetryOptions = {},
): ClientMiddleware<ContinuityCallOptionsExt> {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 4);
  return async function* retryMiddleware<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    callOptions: CallOptions & Partial<ContinuityCallOptionsExt>,
  ): AsyncGenerator<Response, Response | void, undefined> {
    if (call.requestStream || !isSafe(call.method.path) || maxAttempts === 1) {
      return yield* call.next(call.request, callOptions);
    }
    for (let attempt = 0; ; attempt += 1) {
      let delivered = false;
      try {
        if (!call.responseStream) return yield* call.next(call.request, callOptions);
        for await (const response of call.next(call.request, callOptions)) {
          delivered = true;
          yield response;
        }
        return;
      } catch (error) {
        const retryable = error instanceof ClientError && TRANSIENT.has(error.code);
        if (!retryable || delivered || attempt + 1 >= maxAttempts || callOptions.signal?.aborted === true) throw error;
        await sleep(backoffDelayMs(attempt, options), callOptions.signal);
      }
    }
  };
}
