import { Status, type ServerError } from "nice-grpc-common";
import { protocolError } from "../errors.js";
import type { Scope } from "./context.js";
import type { AuthFailure } from "./token-authority.js";

const AUTH_FAILURE_MESSAGES: Readonly<Record<AuthFailure["reason"], string>> = {
  TOKEN_MISSING: "missing authorization: Bearer access token",
  TOKEN_INVALID: "access token is not valid",
  TOKEN_EXPIRED: "access token has expired; exchange a new one",
  TOKEN_REVOKED: "access token was revoked",
  ASSERTION_INVALID: "platform assertion is not valid",
  PLATFORM_UNKNOWN: "assertion issuer is not a known platform",
};

/**
 * The wire form of a refused credential: UNAUTHENTICATED with the failure's reason and a
 * fixed message. Which check failed stays in the server's logs, since telling the caller
 * would help tune a forgery.
 */
export function authFailureError(failure: AuthFailure): ServerError {
  return protocolError(Status.UNAUTHENTICATED, failure.reason, AUTH_FAILURE_MESSAGES[failure.reason]);
}

/** PERMISSION_DENIED / SCOPE_INSUFFICIENT, metadata `scope`. */
export function scopeInsufficient(scope: Scope): ServerError {
  return protocolError(Status.PERMISSION_DENIED, "SCOPE_INSUFFICIENT", `this method needs scope ${scope}`, { scope });
}

/** NOT_FOUND / SUBJECT_NOT_FOUND; also what another subject's name answers. */
export function subjectNotFound(): ServerError {
  return protocolError(Status.NOT_FOUND, "SUBJECT_NOT_FOUND", "subject not found");
}
