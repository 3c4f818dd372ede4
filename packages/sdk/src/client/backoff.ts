import { isAbortLike } from "../errors/continuity-error.js";

/** How retries space themselves out. */
export interface BackoffOptions {
  /** First delay cap, in milliseconds. Default 100. */
  readonly baseDelayMs?: number | undefined;
  /** Largest delay cap, in milliseconds. Default 5000. */
  readonly maxDelayMs?: number | undefined;
  /** Source of randomness in [0, 1), for tests. Default `Math.random`. */
  readonly random?: (() => number) | undefined;
}

/**
 * Exponential backoff with full jitter: a uniformly random delay in [0, min(max, base·2^n)).
 * Full jitter spreads reconnecting clients out, so a server coming back is not hit by all of
 * them in the same instant.
 *
 * @example
 * ```ts
 * // An app's own retry loop, paced like the SDK's: up to 0.2 s, 0.4 s, 0.8 s … capped at 10 s.
 * for (let attempt = 0; !(await tryUpload()); attempt += 1) {
 *   await new Promise((resolve) => setTimeout(resolve, backoffDelayMs(attempt, { baseDelayMs: 200, maxDelayMs: 10_000 })));
 * }
 * ```
 */
export function backoffDelayMs(attempt: number, options: BackoffOptions = {}): number {
  const base = options.baseDelayMs ?? 100;
  const max = options.maxDelayMs ?? 5_000;
  const cap = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return Math.floor((options.random ?? Math.random)() * cap);
}

/** Resolves after `ms`, or rejects with an AbortError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(abortError(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Waits for `promise`, or rejects as soon as `signal` aborts while the shared work goes on:
 * one caller giving up must not fail the others waiting on the same promise. The rejection
 * is `toError(signal)`, by default the signal's reason.
 */
export function abandonable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  toError: (signal: AbortSignal) => unknown = (aborted) => aborted.reason,
): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) return Promise.reject(toError(signal) as Error);
  return new Promise<T>((resolve, reject) => {
    const aborted = (): void => reject(toError(signal) as Error);
    signal.addEventListener("abort", aborted, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", aborted);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", aborted);
        reject(error as Error);
      },
    );
  });
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (isAbortLike(reason)) return reason as Error;
  const error = new Error("The operation was aborted", reason === undefined ? undefined : { cause: reason });
  error.name = "AbortError";
  return error;
}
