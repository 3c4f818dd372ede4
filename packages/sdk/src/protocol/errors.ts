/**
 * The two ways a JSON delta can fail, kept apart because the protocol answers them with
 * different codes: a malformed payload is the client's bug (INVALID_ARGUMENT /
 * MALFORMED_PAYLOAD) and never becomes valid, while an inapplicable one is a race with other
 * writers (FAILED_PRECONDITION / PATCH_NOT_APPLICABLE) that a rebase can fix.
 */

/** Why a JSON document or patch was refused as malformed (stable, for logs and tests). */
export type MalformedReason =
  | "invalid-utf8"
  | "byte-order-mark"
  | "invalid-json"
  | "duplicate-member"
  | "lone-surrogate"
  | "number-out-of-range"
  | "too-deep"
  | "reserved-member-name"
  | "invalid-operation"
  | "invalid-pointer";

/**
 * Thrown when bytes are not an acceptable JSON document (spec HASH-020..HASH-026) or a patch
 * does not have the structure its encoding requires. Servers answer INVALID_ARGUMENT /
 * MALFORMED_PAYLOAD; retrying the same bytes can never succeed.
 */
export class MalformedPatchError extends Error {
  override readonly name = "MalformedPatchError";
  /** Machine-readable cause. */
  readonly reason: MalformedReason;
  /** Index of the offending operation inside a JSON Patch array, when there is one. */
  readonly operationIndex: number | undefined;

  constructor(reason: MalformedReason, message: string, options?: { operationIndex?: number; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.operationIndex = options?.operationIndex;
  }
}

/** Why a well-formed patch could not be applied to a particular state. */
export type NotApplicableReason = "path-not-found" | "test-failed" | "index-out-of-range" | "not-a-container" | "too-deep" | "state-too-large" | "copies-too-large" | "moves-too-large" | "shifts-too-large";

/**
 * Thrown when a well-formed JSON delta cannot be applied to the state it would follow (a failed
 * `test`, a missing path, an index past the end). Servers answer FAILED_PRECONDITION /
 * PATCH_NOT_APPLICABLE; the client can rebase and retry.
 */
export class PatchNotApplicableError extends Error {
  override readonly name = "PatchNotApplicableError";
  /** Machine-readable cause. */
  readonly reason: NotApplicableReason;
  /** Index of the failing operation inside a JSON Patch array, when there is one. */
  readonly operationIndex: number | undefined;

  constructor(reason: NotApplicableReason, message: string, options?: { operationIndex?: number }) {
    super(message);
    this.reason = reason;
    this.operationIndex = options?.operationIndex;
  }
}

/**
 * Thrown by `diffJsonStates` for a JSON Merge Patch stream when no single merge patch turns
 * one state into the other: RFC 7396 cannot set an object member to `null`. States reached by
 * merge patches never need that, so for them the diff always exists.
 */
export class DiffNotExpressibleError extends Error {
  override readonly name = "DiffNotExpressibleError";
}

/**
 * Guard that also works across realms and duplicated module copies, where `instanceof` fails.
 */
export function isMalformedPatchError(error: unknown): error is MalformedPatchError {
  return error instanceof MalformedPatchError || (error instanceof Error && error.name === "MalformedPatchError");
}

/** Guard for `PatchNotApplicableError`; see `isMalformedPatchError` for why not just `instanceof`. */
export function isPatchNotApplicableError(error: unknown): error is PatchNotApplicableError {
  return error instanceof PatchNotApplicableError || (error instanceof Error && error.name === "PatchNotApplicableError");
}
