import { ClientError, Status, type CallOptions, type ClientMiddleware, type ClientMiddlewareCall } from "nice-grpc-common";
import { isAbortLike } from "../errors/continuity-error.js";
import type { ContinuityCallOptionsExt } from "../transport/transport.js";

/**
 * Gives every call a deadline, because grpc-js otherwise waits forever for a connection that
 * never comes. The caller's `deadline`/`timeoutMs` wins; calls for which `exempt` is true (a
 * subscription) get none unless the caller asks. An expired deadline surfaces as
 * DEADLINE_EXCEEDED, a caller's abort stays an abort.
 */
export function createDeadlineMiddleware(
  defaultTimeoutMs: number,
  exempt: (path: string) => boolean,
): ClientMiddleware<ContinuityCallOptionsExt> {
  return async function* deadlineMiddleware<Request, Response>(
    call: ClientMiddlewareCall<Request, Response>,
    options: CallOptions & Partial<ContinuityCallOptionsExt>,
  ): AsyncGenerator<Response, Response | void, undefined> {
    const { deadline, timeoutMs, signal, ...rest } = options;
    const remainingMs =
      deadline !== undefined
        ? deadline.getTime() - Date.now()
        : (timeoutMs ?? (exempt(call.method.path) ? undefined : defaultTimeoutMs));
    if (remainingMs === undefined) {
      return yield* call.next(call.request, signal === undefined ? rest : { ...rest, signal });
    }
    const bounded = linkDeadline(signal, Math.max(0, remainingMs));
    try {
      return yield* call.next(call.request, { ...rest, signal: bounded.signal });
    } catch (error) {
      if (bounded.expired() && isAbortLike(error)) {
        throw new ClientError(call.method.path, Status.DEADLINE_EXCEEDED, `Deadline of ${Math.round(remainingMs)} ms exceeded`);
      }
      throw error;
    } finally {
      bounded.dispose();
    }
  };
}

/** A signal bounded by a deadline, from `linkDeadline`. */
export interface LinkedDeadline {
  /** Aborts with the caller's reason when the caller's signal aborts, or when the deadline passes. */
  readonly signal: AbortSignal;
  /** True when the deadline passed and the caller had not aborted: a timeout, not a cancellation. */
  expired(): boolean;
  /** Stops the timer and unhooks the caller's signal; call it once the work settles. */
  dispose(): void;
}

/**
 * Links a caller's signal to a deadline `ms` from now. The RPC path and the client's own
 * token fetch both need one signal that ends on either, and both must tell a timeout from a
 * cancellation to report DEADLINE_EXCEEDED only for the former.
 */
export function linkDeadline(signal: AbortSignal | undefined, ms: number): LinkedDeadline {
  const controller = new AbortController();
  const forwardAbort = (): void => controller.abort(signal?.reason);
  if (signal?.aborted === true) forwardAbort();
  signal?.addEventListener("abort", forwardAbort, { once: true });
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort();
  }, ms);
  return {
    signal: controller.signal,
    expired: () => expired && signal?.aborted !== true,
    dispose: () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", forwardAbort);
    },
  };
}

/**
 * Turns a caller's relative `timeoutMs` into an absolute `deadline` once, when the call
 * starts. Placed outside the retry layer, so every attempt and every backoff shares the one
 * budget the caller asked for instead of each attempt getting the full `timeoutMs` again.
 */
export async function* anchorDeadlineMiddleware<Request, Response>(
  call: ClientMiddlewareCall<Request, Response>,
  options: CallOptions & Partial<ContinuityCallOptionsExt>,
): AsyncGenerator<Response, Response | void, undefined> {
  const { timeoutMs, ...rest } = options;
  if (timeoutMs === undefined || options.deadline !== undefined) return yield* call.next(call.request, options);
  const anchored: CallOptions & Partial<ContinuityCallOptionsExt> = { ...rest, deadline: new Date(Date.now() + timeoutMs) };
  return yield* call.next(call.request, anchored);
}
