import { ClientError, Status, type CallOptions, type ClientMiddleware, type ClientMiddlewareCall } from "nice-grpc-common";
import type { ContinuityCallOptionsExt } from "../transport/transport.js";
import { backoffDelayMs, sleep, type BackoffOptions } from "./backoff.js";

/** Options of `createRetryMiddleware`. */
export interface RetryOptions extends BackoffOptions {
  /** Attempts in total, the first included. Default 4; 1 turns retrying off. */
  readonly maxAttempts?: number | undefined;
}

const TRANSIENT: ReadonlySet<Status> = new Set([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]);

/** An attempt with less time than this left could not reach the server; it is not started. */
const MIN_ATTEMPT_MS = 5;

/**
 * Repeats calls that failed with UNAVAILABLE or DEADLINE_EXCEEDED — but only calls for which
 * `isSafe` says a repeat cannot change the effect, and only for server streams that have not
 * yet delivered a message (a repeat would deliver it twice). A caller's `deadline` covers all
 * attempts: no attempt starts once too little of it is left.
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
        const delayMs = backoffDelayMs(attempt, options);
        // A caller's deadline bounds the whole call: a retry that would start too late to
        // do anything surfaces the last failure instead of overrunning it.
        const deadline = callOptions.deadline;
        if (deadline !== undefined && deadline.getTime() - Date.now() - delayMs < MIN_ATTEMPT_MS) throw error;
        await sleep(delayMs, callOptions.signal);
      }
    }
  };
}
