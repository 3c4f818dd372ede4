// The credential vocabulary shared by the token authority and the ID-token verifier, in its
// own file so that neither imports the other.
import type { PlatformConfig } from "./platforms.js";

/** Clock skew tolerated between platforms and this server. */
export const CLOCK_SKEW_SECONDS = 30;

/**
 * The wire reasons authentication can fail with. Kept here rather than as gRPC errors so the
 * authority stays transport-free; the middleware and the services map them to statuses.
 */
export type AuthFailureReason =
  | "TOKEN_MISSING"
  | "TOKEN_INVALID"
  | "TOKEN_EXPIRED"
  | "TOKEN_REVOKED"
  | "ASSERTION_INVALID"
  | "PLATFORM_UNKNOWN";

/**
 * A credential was refused. `detail` is for logs only: telling a caller which check failed
 * would help an attacker tune forgeries, so the wire carries the reason and a fixed message.
 */
export class AuthFailure extends Error {
  override readonly name = "AuthFailure";
  constructor(
    readonly reason: AuthFailureReason,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(`${reason}: ${detail}`, options);
  }
}

/** What a verified platform assertion or ID token says. */
export interface VerifiedAssertion {
  readonly platform: PlatformConfig;
  /** The platform's own account id for the person (`sub`). */
  readonly accountId: string;
  /** The token's `jti`, for logs and replay checks; empty for an ID token without one. */
  readonly assertionId: string;
  readonly expiresAt: Date;
}

