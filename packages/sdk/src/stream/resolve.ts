import { Status } from "nice-grpc-common";
import type { ContinuityClient } from "../client/continuity-client.js";
import { ContinuityError } from "../errors/continuity-error.js";
import { ConflictPolicy, DeltaEncoding } from "../gen/continuity/v1/types.js";
import type { StreamInfo } from "./stream-core.js";

/** Delta encodings by the names the high-level API uses. */
export type StreamEncodingName = "json-patch" | "json-merge-patch" | "opaque";

/** Conflict policies by the names the high-level API uses. */
export type ConflictPolicyName = "require-expected-version" | "allow-blind-append";

/** How to create a stream that does not exist yet. */
export interface CreateStreamSpec {
  /** Reverse-DNS type name, e.g. `org.example.course-progress`. */
  readonly type: string;
  /** Delta encoding. Default for JSON handles: `json-merge-patch`; opaque handles always use `opaque`. */
  readonly encoding?: StreamEncodingName | undefined;
  /** Default `require-expected-version`: the SDK always sends the version it computed against. */
  readonly conflictPolicy?: ConflictPolicyName | undefined;
}

const ENCODINGS: Record<StreamEncodingName, DeltaEncoding> = {
  "json-patch": DeltaEncoding.DELTA_ENCODING_JSON_PATCH,
  "json-merge-patch": DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH,
  opaque: DeltaEncoding.DELTA_ENCODING_OPAQUE,
};

const POLICIES: Record<ConflictPolicyName, ConflictPolicy> = {
  "require-expected-version": ConflictPolicy.CONFLICT_POLICY_REQUIRE_EXPECTED_VERSION,
  "allow-blind-append": ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND,
};

/**
 * What a stream created offline is taken to be until the server answers: the spec's
 * encoding and policy, and no uid (the server mints it).
 */
export function provisionalInfo(name: string, create: CreateStreamSpec & { defaultEncoding: StreamEncodingName }): StreamInfo {
  return {
    name,
    uid: "",
    type: create.type,
    encoding: ENCODINGS[create.encoding ?? create.defaultEncoding],
    conflictPolicy: POLICIES[create.conflictPolicy ?? "require-expected-version"],
  };
}

/** The friendly name of a proto encoding. */
export function encodingName(encoding: DeltaEncoding): StreamEncodingName {
  const entry = Object.entries(ENCODINGS).find(([, value]) => value === encoding);
  if (entry === undefined) {
    // Unknown enum values fail safe (brief, guarantee 10): the SDK does not guess.
    throw new ContinuityError({ code: Status.UNIMPLEMENTED, message: `Delta encoding ${encoding} is not supported by this SDK` });
  }
  return entry[0] as StreamEncodingName;
}

/** The friendly name of a proto conflict policy. */
export function conflictPolicyName(policy: ConflictPolicy): ConflictPolicyName {
  const entry = Object.entries(POLICIES).find(([, value]) => value === policy);
  if (entry === undefined) {
    throw new ContinuityError({ code: Status.UNIMPLEMENTED, message: `Conflict policy ${policy} is not supported by this SDK` });
  }
  return entry[0] as ConflictPolicyName;
}

/**
 * The subject and device every stream handle needs: appends are numbered per device, so a
 * handle cannot work with a token that is not device-bound.
 */
export async function requireDeviceSession(
  client: ContinuityClient,
  signal: AbortSignal | undefined,
): Promise<{ subject: string; device: string }> {
  const session = await client.session(signal === undefined ? {} : { signal });
  if (session.device === undefined) {
    throw new ContinuityError({
      code: Status.FAILED_PRECONDITION,
      reason: "DEVICE_REQUIRED",
      message: "Stream handles need a device-bound token: give the token provider a deviceId",
    });
  }
  return { subject: session.subject, device: session.device };
}

/**
 * Runs `work` (which names the subject), and runs it again when it met SUBJECT_MOVED and the
 * client followed the move meanwhile: the second run asks the session again and so uses the
 * subject's name on the new server.
 */
export async function followingMoves<T>(client: ContinuityClient, work: () => Promise<T>): Promise<T> {
  for (let moves = 0; ; moves += 1) {
    const before = client.address;
    try {
      return await work();
    } catch (error) {
      const failure = ContinuityError.from(error);
      if (failure.reason !== "SUBJECT_MOVED" || client.address === before || moves >= 3) throw failure;
    }
  }
}

/** `course-1` → `subjects/{subject}/streams/course-1`; full names pass through. */
export function streamNameOf(subject: string, stream: string): string {
  return stream.startsWith("subjects/") ? stream : `${subject}/streams/${stream}`;
}

/**
 * Gets a stream, creating it when it does not exist and `create` says how. Two devices that
 * create the same stream id at once meet on one stream: the loser of the race gets
 * ALREADY_EXISTS and reads the winner's.
 */
export async function resolveStream(
  client: ContinuityClient,
  subject: string,
  stream: string,
  create: (CreateStreamSpec & { defaultEncoding: StreamEncodingName }) | undefined,
  signal: AbortSignal | undefined,
): Promise<StreamInfo> {
  const name = streamNameOf(subject, stream);
  const callOptions = signal === undefined ? {} : { signal };
  const toInfo = (found: { name: string; uid: string; type: string; encoding: DeltaEncoding; conflictPolicy: ConflictPolicy } | undefined): StreamInfo => {
    if (found === undefined) throw new ContinuityError({ code: Status.INTERNAL, message: `${name}: the server answered without a stream` });
    encodingName(found.encoding);
    conflictPolicyName(found.conflictPolicy);
    return { name: found.name, uid: found.uid, type: found.type, encoding: found.encoding, conflictPolicy: found.conflictPolicy };
  };
  try {
    return toInfo((await client.streams.getStream({ name }, callOptions)).stream);
  } catch (error) {
    const failure = ContinuityError.from(error);
    if (failure.code !== Status.NOT_FOUND || create === undefined) throw failure;
  }
  const streamId = name.slice(name.lastIndexOf("/") + 1);
  try {
    const created = await client.streams.createStream(
      {
        parent: subject,
        streamId,
        stream: {
          type: create.type,
          encoding: ENCODINGS[create.encoding ?? create.defaultEncoding],
          conflictPolicy: POLICIES[create.conflictPolicy ?? "require-expected-version"],
        },
      },
      callOptions,
    );
    return toInfo(created.stream);
  } catch (error) {
    const failure = ContinuityError.from(error);
    if (failure.reason !== "STREAM_ALREADY_EXISTS") throw failure;
    return toInfo((await client.streams.getStream({ name }, callOptions)).stream);
  }
}
