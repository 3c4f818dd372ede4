import { continuity } from "@continuity/sdk/gen";
import { Status } from "nice-grpc-common";
import type { AuthContext } from "../auth/context.js";
import { requireOwnSubject } from "../auth/scopes.js";
import { protocolError } from "../errors.js";
import type { EncodingCode, Store, StreamRecord, VersionCheck } from "../store/types.js";
import { Encoding } from "../store/types.js";
import { loadAccess, type StreamAccess } from "./access.js";

/**
 * Checks shared by the core services, so that each refusal has one wording and one
 * code/reason pair everywhere.
 */

/** NOT_FOUND / STREAM_NOT_FOUND — also for streams the caller may not see. */
export function streamNotFound(): Error {
  return protocolError(Status.NOT_FOUND, "STREAM_NOT_FOUND", "stream not found");
}

/** PERMISSION_DENIED / GRANT_READ_ONLY. */
export function grantReadOnly(): Error {
  return protocolError(Status.PERMISSION_DENIED, "GRANT_READ_ONLY", "the platform may read this stream but not write it");
}

/** FAILED_PRECONDITION / DEVICE_REQUIRED unless the token is bound to a device. */
export function requireDevice(auth: AuthContext): string {
  if (auth.deviceId === undefined) {
    throw protocolError(Status.FAILED_PRECONDITION, "DEVICE_REQUIRED", "this call needs a device-bound token");
  }
  return auth.deviceId;
}

/** OUT_OF_RANGE / VERSION_AHEAD_OF_HEAD. */
export function aheadOfHead(headVersion: number): Error {
  return protocolError(Status.OUT_OF_RANGE, "VERSION_AHEAD_OF_HEAD", `version is beyond the stream's head ${headVersion}`, {
    headVersion: String(headVersion),
  });
}

/** FAILED_PRECONDITION / HISTORY_COMPACTED. */
export function historyCompacted(horizonVersion: number): Error {
  return protocolError(
    Status.FAILED_PRECONDITION,
    "HISTORY_COMPACTED",
    `versions at or below ${horizonVersion} were compacted; re-base on a snapshot`,
    { horizonVersion: String(horizonVersion) },
  );
}

/**
 * The stream named by the call, if the caller may read it: another subject, a missing
 * stream and an invisible stream all answer the same NOT_FOUND, so nothing leaks. With
 * intent `write` it also checks write access, unless the caller defers that check to keep
 * the spec's check order (AppendDeltas validates payloads first).
 */
export async function visibleStream(
  store: Store,
  auth: AuthContext,
  name: { readonly subjectId: string; readonly id: string },
  intent: "read" | "write",
  options: { readonly deferWriteCheck?: boolean } = {},
): Promise<{ stream: StreamRecord; access: StreamAccess }> {
  requireOwnSubject(auth, name.subjectId, intent);
  const access = await loadAccess(store, auth);
  const stream = await store.getStream(name.subjectId, name.id);
  if (stream === undefined || !access.canRead(stream)) throw streamNotFound();
  if (intent === "write" && options.deferWriteCheck !== true && !access.canWrite(stream)) throw grantReadOnly();
  return { stream, access };
}

/** The enum name used in ENCODING_UNSUPPORTED metadata. */
export function encodingName(encoding: EncodingCode): string {
  return continuity.v1.deltaEncodingToJSON(encoding);
}

/** Maps a store version check to its wire error. */
export function versionCheckError(check: VersionCheck): Error {
  switch (check.kind) {
    case "stream-not-found":
      return streamNotFound();
    case "below-horizon":
      return historyCompacted(check.horizonVersion);
    case "ahead-of-head":
      return aheadOfHead(check.headVersion);
  }
}
