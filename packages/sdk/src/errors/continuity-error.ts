import { ClientError, Status } from "nice-grpc-common";
import { RichClientError, type BadRequest, type ErrorDetails, type ErrorInfo } from "nice-grpc-error-details";

/** The `google.rpc.ErrorInfo.domain` every Continuity server puts on its errors. */
export const CONTINUITY_ERROR_DOMAIN = "continuity.v1";

/**
 * One bad request field, as a server reports it in `google.rpc.BadRequest`. Field paths use
 * the proto's snake_case names (`deltas[2].payload`), so they can be matched to a form field.
 */
export interface FieldViolation {
  /** Path of the bad field in the request, e.g. `deltas[2].payload`. */
  readonly field: string;
  /** Why the value was refused, for people. */
  readonly description: string;
}

/** What `ContinuityError`'s constructor accepts; every field but `code` is optional. */
export interface ContinuityErrorInit {
  /** Canonical gRPC status code. */
  readonly code: Status;
  /** Human-readable message; logs only, never for branching. */
  readonly message?: string;
  /** Stable UPPER_SNAKE reason from `google.rpc.ErrorInfo`, when the server sent one. */
  readonly reason?: string | undefined;
  /** `google.rpc.ErrorInfo.metadata`. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** `google.rpc.BadRequest` field violations. */
  readonly fieldViolations?: readonly FieldViolation[];
  /** Every decoded status detail, for details the SDK does not model. */
  readonly details?: readonly ErrorDetails[];
  /** The RPC path, e.g. `/continuity.v1.StreamService/AppendDeltas`. */
  readonly path?: string | undefined;
  /** The error this one was made from. */
  readonly cause?: unknown;
}

/**
 * The one error type every SDK call rejects with, so that callers branch on two stable
 * things — the canonical gRPC `code` and the protocol's `reason` — instead of on messages or on
 * transport-specific error classes. Reasons a client does not know must be treated by their
 * code alone (errors.proto), which is why `reason` is a plain string.
 *
 * @example
 * ```ts
 * try {
 *   await client.streams.getStream({ name });
 * } catch (error) {
 *   const failure = ContinuityError.from(error);
 *   if (failure.reason === "STREAM_NOT_FOUND") return undefined;
 *   throw failure;
 * }
 * ```
 */
export class ContinuityError extends Error {
  /** Always `ContinuityError`; how `isContinuityError` recognises copies from another module instance. */
  override readonly name = "ContinuityError";
  /** Canonical gRPC status code. */
  readonly code: Status;
  /** `ErrorInfo.reason` without the `ERROR_REASON_` prefix, e.g. `VERSION_CONFLICT`; undefined when the error did not come with one. */
  readonly reason: string | undefined;
  /** `ErrorInfo.metadata`, e.g. `{ headVersion: "7", headHash: "ab…" }` for VERSION_CONFLICT. */
  readonly metadata: Readonly<Record<string, string>>;
  /** `BadRequest` field violations of an INVALID_ARGUMENT / INVALID_FIELD error. */
  readonly fieldViolations: readonly FieldViolation[];
  /** All decoded status details. */
  readonly details: readonly ErrorDetails[];
  /** The RPC path that failed, when the error came from a call. */
  readonly path: string | undefined;

  constructor(init: ContinuityErrorInit) {
    super(init.message ?? Status[init.code] ?? "error", init.cause === undefined ? undefined : { cause: init.cause });
    this.code = init.code;
    this.reason = init.reason;
    this.metadata = init.metadata ?? {};
    this.fieldViolations = init.fieldViolations ?? [];
    this.details = init.details ?? [];
    this.path = init.path;
  }

  /**
   * Turns anything a call can throw into a `ContinuityError`: gRPC client errors with their
   * rich details, aborts (CANCELLED), and unexpected exceptions (UNKNOWN, with the original as
   * `cause`). Returns the argument itself when it already is one.
   */
  static from(error: unknown): ContinuityError {
    if (isContinuityError(error)) return error;
    if (error instanceof RichClientError) return fromRichClientError(error);
    if (error instanceof ClientError) {
      return new ContinuityError({ code: error.code, message: error.details, path: error.path, cause: error });
    }
    if (isAbortLike(error)) {
      return new ContinuityError({ code: Status.CANCELLED, message: "The call was cancelled", cause: error });
    }
    const message = error instanceof Error ? error.message : String(error);
    return new ContinuityError({ code: Status.UNKNOWN, message, cause: error });
  }

  /** A short, log-friendly rendering: `ABORTED VERSION_CONFLICT: message`. */
  override toString(): string {
    const code = Status[this.code] ?? String(this.code);
    return `${code}${this.reason === undefined ? "" : ` ${this.reason}`}: ${this.message}`;
  }
}

/**
 * `instanceof` fails across duplicated module copies (a bundler may load the SDK twice), so
 * the SDK recognises its own errors by name and shape too.
 *
 * @example
 * ```ts
 * progress.update(change).catch((error: unknown) => {
 *   if (isContinuityError(error)) console.warn(error.code, error.reason, error.message);
 *   else throw error;
 * });
 * ```
 */
export function isContinuityError(error: unknown): error is ContinuityError {
  return (
    error instanceof ContinuityError ||
    (error instanceof Error && error.name === "ContinuityError" && typeof (error as { code?: unknown }).code === "number")
  );
}

/**
 * True when `error` is a `ContinuityError` with this reason.
 *
 * @example
 * ```ts
 * try {
 *   await replica.acceptHandoff(name);
 * } catch (error) {
 *   if (hasReason(error, "HANDOFF_RESOLVED")) return; // another device answered first
 *   throw error;
 * }
 * ```
 */
export function hasReason(error: unknown, reason: string): error is ContinuityError {
  return isContinuityError(error) && error.reason === reason;
}

function fromRichClientError(error: RichClientError): ContinuityError {
  const info = error.extra.find((detail): detail is ErrorInfo => detail.$type === "google.rpc.ErrorInfo");
  const badRequests = error.extra.filter((detail): detail is BadRequest => detail.$type === "google.rpc.BadRequest");
  const fieldViolations = badRequests.flatMap((request) =>
    request.fieldViolations.map((violation) => ({ field: violation.field, description: violation.description })),
  );
  return new ContinuityError({
    code: error.code,
    message: error.details,
    // A reason from a foreign domain (a proxy, a load balancer) is not ours to interpret.
    reason: info !== undefined && info.domain === CONTINUITY_ERROR_DOMAIN ? info.reason : undefined,
    metadata: info !== undefined && info.domain === CONTINUITY_ERROR_DOMAIN ? { ...info.metadata } : {},
    fieldViolations,
    details: error.extra,
    path: error.path,
    cause: error,
  });
}

/**
 * nice-grpc and `AbortSignal` both reject with an error named `AbortError`; matching by name
 * covers both without depending on either implementation.
 *
 * @example
 * ```ts
 * const controller = new AbortController();
 * setTimeout(() => controller.abort(), 2_000);
 * await progress.settled({ signal: controller.signal }).catch((error: unknown) => {
 *   if (!isAbortLike(error)) throw error; // gave up waiting; the writes stay queued
 * });
 * ```
 */
export function isAbortLike(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}
