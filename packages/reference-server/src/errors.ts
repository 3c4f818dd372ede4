import { ServerError, Status } from "nice-grpc-common";
import type { ServerMiddleware } from "nice-grpc-common";
import { BadRequest, ErrorInfo, RichServerError } from "nice-grpc-error-details";

/**
 * The one place the server builds wire errors, so that every error carries exactly one
 * `google.rpc.ErrorInfo` in domain `continuity.v1` (and BadRequest for bad fields), and no
 * service can forget it.
 */

/** The ErrorInfo domain of every Continuity error. */
export const ERROR_DOMAIN = "continuity.v1";

/** One bad request field: snake_case proto path (e.g. `deltas[2].payload`) and what is wrong. */
export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/**
 * A Continuity error: canonical code, ErrorInfo reason (errors.proto name without
 * `ERROR_REASON_`), a human message, and string metadata with lowerCamelCase keys.
 */
export function protocolError(
  code: Status,
  reason: string,
  message: string,
  metadata: Readonly<Record<string, string>> = {},
): ServerError {
  return new RichServerError(code, message, [ErrorInfo.fromPartial({ reason, domain: ERROR_DOMAIN, metadata: { ...metadata } })]);
}

/** INVALID_ARGUMENT / INVALID_FIELD with one BadRequest violation per bad field. */
export function invalidFields(violations: readonly FieldViolation[]): ServerError {
  const first = violations[0];
  const message = first === undefined ? "invalid request" : `invalid ${first.field}: ${first.description}`;
  return new RichServerError(Status.INVALID_ARGUMENT, message, [
    ErrorInfo.fromPartial({ reason: "INVALID_FIELD", domain: ERROR_DOMAIN, metadata: {} }),
    BadRequest.fromPartial({ fieldViolations: violations.map((v) => ({ field: v.field, description: v.description })) }),
  ]);
}

/** INVALID_ARGUMENT / INVALID_FIELD for a single field. */
export function invalidField(field: string, description: string): ServerError {
  return invalidFields([{ field, description }]);
}

/** INTERNAL / INTERNAL: what any unexpected exception becomes on the wire. */
export function internalError(): ServerError {
  return protocolError(Status.INTERNAL, "INTERNAL", "internal server error");
}

/** Options of {@link createErrorMiddleware}. */
export interface ErrorMiddlewareOptions {
  /** Told about every unexpected exception before it is hidden behind INTERNAL. */
  readonly onUnexpected?: (error: unknown, method: string) => void;
}

/**
 * Turns anything a handler throws that is not a ServerError into INTERNAL / INTERNAL, so a
 * bug never crashes the server nor leaks a stack trace, and the client still gets an
 * ErrorInfo. Cancellation passes through untouched.
 */
export function createErrorMiddleware(options: ErrorMiddlewareOptions = {}): ServerMiddleware {
  return async function* errorMiddleware(call, context) {
    try {
      return yield* call.next(call.request, context);
    } catch (error) {
      if (error instanceof ServerError || isAbortError(error)) throw error;
      options.onUnexpected?.(error, call.method.path);
      throw internalError();
    }
  };
}

/** True for the AbortError nice-grpc raises when a call is cancelled or its deadline passes. */
export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}
