import { isDeepStrictEqual } from "node:util";
import { ClientError, Status } from "nice-grpc-common";
import { RichClientError, type ErrorInfo, type BadRequest } from "nice-grpc-error-details";
import { formatWireValue, truncate } from "./wire-format.js";

/** The ErrorInfo domain every Continuity error carries. */
export const ERROR_DOMAIN = "continuity.v1";

/**
 * Thrown when the server under test does something the spec forbids. The runner tells it
 * apart from harness trouble (any other exception), which is reported as `error`.
 */
export class ConformanceFailure extends Error {
  override readonly name = "ConformanceFailure";
}

/**
 * Thrown when a case finds at run time that the server gives it no way to check its
 * requirement (for example, a token lifetime too long to wait out). Reported as `skip`
 * with the reason, never as a pass.
 */
export class CaseSkipped extends Error {
  override readonly name = "CaseSkipped";
}

/** Fails the case with a message that says what was expected and what came back. */
export function fail(message: string): never {
  throw new ConformanceFailure(message);
}

/** Fails the case unless `condition` holds. */
export function check(condition: unknown, message: string): asserts condition {
  if (!condition) fail(message);
}

/** Fails unless the values are deeply equal (bigints, Buffers and Dates included). */
export function checkEqual<T>(actual: unknown, expected: T, what: string): asserts actual is T {
  if (!isDeepStrictEqual(normalize(actual), normalize(expected))) {
    fail(`${what}: expected ${truncate(formatWireValue(expected), 600)}, got ${truncate(formatWireValue(actual), 600)}`);
  }
}

/** Byte strings longer than this are shown by length and around their first difference. */
const SHOWN_BYTES = 64;

/** Fails unless two byte strings are equal; messages show hex (of long ones, where they differ). */
export function checkBytes(actual: Uint8Array | undefined, expected: Uint8Array, what: string): void {
  if (actual !== undefined && Buffer.from(actual).equals(Buffer.from(expected))) return;
  if (actual === undefined) fail(`${what}: expected ${shownBytes(expected, 0)}, got nothing`);
  if (actual.length <= SHOWN_BYTES && expected.length <= SHOWN_BYTES) {
    fail(`${what}: expected ${Buffer.from(expected).toString("hex")}, got ${Buffer.from(actual).toString("hex")}`);
  }
  let at = 0;
  while (at < actual.length && at < expected.length && actual[at] === expected[at]) at++;
  fail(`${what}: expected ${shownBytes(expected, at)}, got ${shownBytes(actual, at)} (first difference at byte ${at})`);
}

function shownBytes(bytes: Uint8Array, around: number): string {
  if (bytes.length === 0) return "no bytes";
  if (bytes.length <= SHOWN_BYTES) return Buffer.from(bytes).toString("hex");
  const from = Math.max(0, Math.min(around - SHOWN_BYTES / 4, bytes.length - SHOWN_BYTES));
  const hex = Buffer.from(bytes.subarray(from, from + SHOWN_BYTES)).toString("hex");
  return `${bytes.length} bytes, ${from > 0 ? `…[${from}] ` : ""}${hex}${from + SHOWN_BYTES < bytes.length ? "…" : ""}`;
}

function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  if (Array.isArray(value)) return value.map(normalize);
  if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, normalize(inner)]));
  }
  return value;
}

/**
 * The error table of errors.proto: the code each reason is sent with and the metadata keys it
 * must carry. Every checked error is held to it, whatever the case asked for.
 */
export const REASONS: Readonly<Record<string, { code: Status; metadata: readonly string[] }>> = {
  INVALID_FIELD: { code: Status.INVALID_ARGUMENT, metadata: [] },
  MALFORMED_PAYLOAD: { code: Status.INVALID_ARGUMENT, metadata: ["index"] },
  INVALID_CURSOR: { code: Status.INVALID_ARGUMENT, metadata: [] },
  INVALID_PAGE_TOKEN: { code: Status.INVALID_ARGUMENT, metadata: [] },
  SNAPSHOT_MISMATCH: { code: Status.INVALID_ARGUMENT, metadata: [] },
  PROTOCOL_VERSION_UNSUPPORTED: { code: Status.FAILED_PRECONDITION, metadata: ["supported"] },
  TOKEN_MISSING: { code: Status.UNAUTHENTICATED, metadata: [] },
  TOKEN_INVALID: { code: Status.UNAUTHENTICATED, metadata: [] },
  TOKEN_EXPIRED: { code: Status.UNAUTHENTICATED, metadata: [] },
  TOKEN_REVOKED: { code: Status.UNAUTHENTICATED, metadata: [] },
  ASSERTION_INVALID: { code: Status.UNAUTHENTICATED, metadata: [] },
  PLATFORM_UNKNOWN: { code: Status.UNAUTHENTICATED, metadata: [] },
  SCOPE_INSUFFICIENT: { code: Status.PERMISSION_DENIED, metadata: ["scope"] },
  SCOPE_NOT_ALLOWED: { code: Status.PERMISSION_DENIED, metadata: ["scope"] },
  GRANT_READ_ONLY: { code: Status.PERMISSION_DENIED, metadata: [] },
  DEVICE_REVOKED: { code: Status.PERMISSION_DENIED, metadata: [] },
  GRANT_REVOKED: { code: Status.PERMISSION_DENIED, metadata: [] },
  NOT_GRANTOR: { code: Status.PERMISSION_DENIED, metadata: [] },
  NOT_STREAM_OWNER: { code: Status.PERMISSION_DENIED, metadata: [] },
  SUBJECT_NOT_FOUND: { code: Status.NOT_FOUND, metadata: [] },
  STREAM_NOT_FOUND: { code: Status.NOT_FOUND, metadata: [] },
  CHECKPOINT_NOT_FOUND: { code: Status.NOT_FOUND, metadata: [] },
  HANDOFF_NOT_FOUND: { code: Status.NOT_FOUND, metadata: [] },
  DEVICE_NOT_FOUND: { code: Status.NOT_FOUND, metadata: [] },
  GRANT_NOT_FOUND: { code: Status.NOT_FOUND, metadata: [] },
  ACCOUNT_LINK_NOT_FOUND: { code: Status.NOT_FOUND, metadata: [] },
  LINK_CODE_INVALID: { code: Status.NOT_FOUND, metadata: [] },
  SNAPSHOT_NOT_FOUND: { code: Status.NOT_FOUND, metadata: [] },
  MIGRATION_NOT_FOUND: { code: Status.NOT_FOUND, metadata: [] },
  STREAM_ALREADY_EXISTS: { code: Status.ALREADY_EXISTS, metadata: [] },
  CHECKPOINT_ALREADY_EXISTS: { code: Status.ALREADY_EXISTS, metadata: [] },
  VERSION_CONFLICT: { code: Status.ABORTED, metadata: ["headVersion", "headHash"] },
  CLIENT_SEQUENCE_GAP: { code: Status.FAILED_PRECONDITION, metadata: ["expectedSequence"] },
  CLIENT_SEQUENCE_REUSED: { code: Status.FAILED_PRECONDITION, metadata: ["clientSequence", "expectedSequence"] },
  CLIENT_SEQUENCE_EXPIRED: { code: Status.FAILED_PRECONDITION, metadata: ["clientSequence", "expectedSequence"] },
  EXPECTED_VERSION_REQUIRED: { code: Status.FAILED_PRECONDITION, metadata: [] },
  PATCH_NOT_APPLICABLE: { code: Status.FAILED_PRECONDITION, metadata: ["index"] },
  HISTORY_COMPACTED: { code: Status.FAILED_PRECONDITION, metadata: ["horizonVersion"] },
  HANDOFF_RESOLVED: { code: Status.FAILED_PRECONDITION, metadata: ["state"] },
  ACCOUNT_LINKED_ELSEWHERE: { code: Status.FAILED_PRECONDITION, metadata: [] },
  ENCODING_UNSUPPORTED: { code: Status.FAILED_PRECONDITION, metadata: ["encoding"] },
  SUBJECT_MOVED: { code: Status.FAILED_PRECONDITION, metadata: ["target", "subject"] },
  LAST_ACCOUNT_LINK: { code: Status.FAILED_PRECONDITION, metadata: [] },
  MIGRATION_CONFLICT: { code: Status.FAILED_PRECONDITION, metadata: [] },
  DEVICE_REQUIRED: { code: Status.FAILED_PRECONDITION, metadata: [] },
  VERSION_AHEAD_OF_HEAD: { code: Status.OUT_OF_RANGE, metadata: ["headVersion"] },
  DELTA_TOO_LARGE: { code: Status.RESOURCE_EXHAUSTED, metadata: ["limit", "index"] },
  BATCH_TOO_LARGE: { code: Status.RESOURCE_EXHAUSTED, metadata: ["limit"] },
  RESUME_PAYLOAD_TOO_LARGE: { code: Status.RESOURCE_EXHAUSTED, metadata: ["limit"] },
  STREAM_LIMIT_REACHED: { code: Status.RESOURCE_EXHAUSTED, metadata: ["limit"] },
  SUBSCRIBER_TOO_SLOW: { code: Status.RESOURCE_EXHAUSTED, metadata: [] },
  SNAPSHOT_TOO_LARGE: { code: Status.RESOURCE_EXHAUSTED, metadata: ["limit"] },
  LINK_CODE_ATTEMPTS_EXCEEDED: { code: Status.RESOURCE_EXHAUSTED, metadata: ["retryAfterSeconds"] },
  PROFILE_NOT_SUPPORTED: { code: Status.UNIMPLEMENTED, metadata: ["profile"] },
  SHUTTING_DOWN: { code: Status.UNAVAILABLE, metadata: [] },
  INTERNAL: { code: Status.INTERNAL, metadata: [] },
  IDENTITY_PROVIDER_UNAVAILABLE: { code: Status.UNAVAILABLE, metadata: ["platform"] },
};

// What must never leak into a status message: a JWS (tokens, assertions) or a stack trace.
const LEAKS: readonly [RegExp, string][] = [
  [/eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/, "a JWS (token or assertion)"],
  [/\n\s+at \S+ \(|\bat [\w.]+ \(\/|node:internal/, "a stack trace"],
];

/** What an error must look like on the wire. */
export interface ExpectedError {
  readonly code: Status;
  /** One reason, or several when the spec leaves the choice to the server. */
  readonly reason: string | readonly string[];
  /** ErrorInfo metadata entries that must be present with these values. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** ErrorInfo metadata keys that must be present, whatever their values. */
  readonly metadataKeys?: readonly string[];
  /** Field paths that must appear in a google.rpc.BadRequest field violation. */
  readonly fieldViolations?: readonly string[];
}

/** A checked error: its ErrorInfo, for cases that read metadata further. */
export interface CheckedError {
  readonly code: Status;
  /** The status message. */
  readonly message: string;
  readonly info: ErrorInfo;
  readonly badRequest: BadRequest | undefined;
}

/**
 * Runs a call that must fail and checks the canonical code AND the single ErrorInfo
 * (domain `continuity.v1`, reason, metadata). Every error assertion of the suite goes
 * through here, so a server that gets the code right but drops the details fails.
 */
export async function expectError(call: Promise<unknown> | (() => Promise<unknown>), expected: ExpectedError, what: string): Promise<CheckedError> {
  let outcome: unknown;
  try {
    outcome = await (typeof call === "function" ? call() : call);
  } catch (error) {
    return checkError(error, expected, what);
  }
  return fail(`${what}: expected ${describeExpected(expected)}, but the call succeeded with ${truncate(formatWireValue(outcome), 400)}`);
}

/** Checks an error already caught (e.g. the final status of a stream). */
export function checkError(error: unknown, expected: ExpectedError, what: string): CheckedError {
  if (!(error instanceof ClientError)) throw error;
  const reasons = typeof expected.reason === "string" ? [expected.reason] : expected.reason;
  if (error.code !== expected.code) {
    fail(`${what}: expected ${describeExpected(expected)}, got ${Status[error.code]} (${error.details})${describeInfo(error)}`);
  }
  const extra = error instanceof RichClientError ? error.extra : [];
  const infos = extra.filter((detail): detail is ErrorInfo => detail.$type === "google.rpc.ErrorInfo");
  if (infos.length !== 1) {
    fail(`${what}: ${Status[error.code]} must carry exactly one google.rpc.ErrorInfo, found ${infos.length}`);
  }
  const info = infos[0]!;
  if (info.domain !== ERROR_DOMAIN) fail(`${what}: ErrorInfo.domain must be "${ERROR_DOMAIN}", got "${info.domain}"`);
  if (!reasons.includes(info.reason)) {
    fail(`${what}: expected reason ${reasons.join(" or ")}, got ${info.reason} (${Status[error.code]})`);
  }
  for (const [key, value] of Object.entries(expected.metadata ?? {})) {
    if (info.metadata[key] !== value) fail(`${what}: ErrorInfo.metadata.${key} must be "${value}", got ${JSON.stringify(info.metadata[key])}`);
  }
  for (const key of expected.metadataKeys ?? []) {
    if (info.metadata[key] === undefined) fail(`${what}: ErrorInfo.metadata must carry "${key}", got ${JSON.stringify(info.metadata)}`);
  }
  const table = REASONS[info.reason];
  if (table === undefined) fail(`${what}: reason ${info.reason} is not in the ErrorReason table`);
  if (table.code !== error.code) fail(`${what}: reason ${info.reason} must be sent with ${Status[table.code]}, got ${Status[error.code]}`);
  for (const key of table.metadata) {
    if (info.metadata[key] === undefined) fail(`${what}: ${info.reason} must carry ErrorInfo.metadata.${key}, got ${JSON.stringify(info.metadata)}`);
  }
  for (const [pattern, label] of LEAKS) {
    if (pattern.test(error.details)) fail(`${what}: the status message must not contain ${label}: ${truncate(error.details, 200)}`);
  }
  const badRequest = extra.find((detail): detail is BadRequest => detail.$type === "google.rpc.BadRequest");
  if (info.reason === "INVALID_FIELD") {
    if (badRequest === undefined || badRequest.fieldViolations.length === 0) fail(`${what}: INVALID_FIELD must carry google.rpc.BadRequest with at least one field violation`);
    for (const violation of badRequest.fieldViolations) {
      if (violation.field === "" || violation.description === "") fail(`${what}: every field violation needs a field path and a description, got ${JSON.stringify(violation)}`);
    }
  }
  if (expected.fieldViolations !== undefined && expected.fieldViolations.length > 0) {
    if (badRequest === undefined) fail(`${what}: INVALID_FIELD must carry google.rpc.BadRequest`);
    const fields = badRequest.fieldViolations.map((violation) => violation.field);
    // A violation may name a more precise path inside the expected field (`streams[1].stream`
    // for `streams`): both point the developer at the same input.
    const names = (actual: string, field: string) => actual === field || actual.startsWith(`${field}[`) || actual.startsWith(`${field}.`);
    for (const field of expected.fieldViolations) {
      if (!fields.some((actual) => names(actual, field))) fail(`${what}: BadRequest must name field "${field}", got ${JSON.stringify(fields)}`);
    }
  }
  return { code: error.code, message: error.details, info, badRequest };
}

function describeExpected(expected: ExpectedError): string {
  const reasons = typeof expected.reason === "string" ? expected.reason : expected.reason.join("|");
  return `${Status[expected.code]} / ${reasons}`;
}

function describeInfo(error: ClientError): string {
  if (!(error instanceof RichClientError)) return "";
  const info = error.extra.find((detail): detail is ErrorInfo => detail.$type === "google.rpc.ErrorInfo");
  return info === undefined ? "" : ` reason ${info.reason}`;
}

export { Status };
