import { Status } from "nice-grpc-common";
import type { ContinuityClient } from "../client/continuity-client.js";
import { ContinuityError } from "../errors/continuity-error.js";
import type { Checkpoint, Handoff } from "../gen/continuity/v1/checkpoint_service.js";
import type { Delta } from "../gen/continuity/v1/stream_service.js";
import { DeltaEncoding, type ResumePayload } from "../gen/continuity/v1/types.js";
import { bytesEqual, checkpointDigest, genesisHash, parseJsonDocument, toHex, verifyChain, type JsonValue } from "../protocol/index.js";
import { streamNameOf } from "../stream/resolve.js";
import { fetchVerifiedSnapshot, integrity } from "../stream/snapshot.js";

/** Where to pick an activity up again; the fields of `ResumePayload`, all but `activityType` optional. */
export interface ResumeInfo {
  /** Reverse-DNS activity type, e.g. `org.example.lesson`. */
  readonly activityType: string;
  /** The resource the activity is about, e.g. a course id. */
  readonly resource?: string | undefined;
  /** Where in the resource, e.g. `lesson-4/t=312.5`. */
  readonly position?: string | undefined;
  /** An https URL that opens the activity on the web. */
  readonly fallbackUrl?: string | undefined;
  /** Further string attributes. */
  readonly attributes?: Readonly<Record<string, string>> | undefined;
}

/** A stream to capture at an exact version. */
export interface VersionedStreamRef {
  /** Stream id or full name. */
  readonly stream: string;
  /** The version to capture; unset: the head at the moment of capture. */
  readonly version?: bigint | undefined;
}

/** A stream to capture: its id or name (captured at its head), or a `VersionedStreamRef`. */
export type CheckpointStreamRef = string | VersionedStreamRef;

/** Options of `createCheckpoint`. */
export interface CreateCheckpointOptions {
  /** The streams to capture (1 to `Limits.max_checkpoint_streams`). */
  readonly streams: readonly CheckpointStreamRef[];
  /** Where to resume. Its canonical JSON must fit in 4096 bytes. */
  readonly resume: ResumeInfo;
  /** A stable checkpoint id; empty lets the server mint one. */
  readonly checkpointId?: string | undefined;
  /** Cancels the call. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Captures streams atomically with a resume payload and verifies the server's digest of
 * what it captured, so a checkpoint that reaches another device is known to be the one this
 * device made.
 *
 * @example
 * ```ts
 * const checkpoint = await createCheckpoint(client, {
 *   streams: ["course-42-progress"],
 *   resume: { activityType: "org.example.lesson", resource: "course-42", position: "lesson-4/t=312.5" },
 * });
 * ```
 */
export async function createCheckpoint(client: ContinuityClient, options: CreateCheckpointOptions): Promise<Checkpoint> {
  const { subject } = await client.session(options.signal === undefined ? {} : { signal: options.signal });
  const selectors = options.streams.map((ref) =>
    typeof ref === "string"
      ? { stream: streamNameOf(subject, ref) }
      : ref.version === undefined
        ? { stream: streamNameOf(subject, ref.stream) }
        : { stream: streamNameOf(subject, ref.stream), version: ref.version },
  );
  const response = await client.checkpoints.createCheckpoint(
    { parent: subject, checkpointId: options.checkpointId ?? "", streams: selectors, resume: toResumePayload(options.resume) },
    options.signal === undefined ? {} : { signal: options.signal },
  );
  const checkpoint = requireCheckpoint(response.checkpoint);
  for (const selector of selectors) {
    const entry = checkpoint.entries.find((candidate) => candidate.stream === selector.stream);
    if (entry === undefined) throw integrity(checkpoint.name, `the checkpoint does not capture ${selector.stream}`);
    if ("version" in selector && selector.version !== undefined && entry.version !== selector.version) {
      throw integrity(checkpoint.name, `${selector.stream} was captured at ${entry.version}, asked for ${selector.version}`);
    }
  }
  return checkpoint;
}

/**
 * Offers a checkpoint to the subject's other devices (or one of them).
 *
 * @example
 * ```ts
 * const checkpoint = await createCheckpoint(client, { streams: [progress.name], resume: { activityType: "org.example.lesson", position: "lesson-4" } });
 * const handoff = await offerHandoff(client, { checkpoint: checkpoint.name, targetDevice: "phone-1", ttlSeconds: 120 });
 * ```
 */
export async function offerHandoff(
  client: ContinuityClient,
  options: { checkpoint: string; targetDevice?: string | undefined; ttlSeconds?: number | undefined; signal?: AbortSignal | undefined },
): Promise<Handoff> {
  const { subject } = await client.session(options.signal === undefined ? {} : { signal: options.signal });
  const response = await client.checkpoints.offerHandoff(
    {
      parent: subject,
      checkpoint: options.checkpoint,
      targetDevice: options.targetDevice === undefined ? "" : deviceNameOf(subject, options.targetDevice),
      ttlSeconds: options.ttlSeconds ?? 0,
    },
    options.signal === undefined ? {} : { signal: options.signal },
  );
  if (response.handoff === undefined) throw new ContinuityError({ code: Status.INTERNAL, message: "OfferHandoff answered without a handoff" });
  return response.handoff;
}

/** What every resumed stream has, whatever its encoding. */
export interface ResumedStreamBase {
  /** `subjects/{subject}/streams/{stream}`. */
  readonly name: string;
  /** The stream's uid, as captured. */
  readonly uid: string;
  /** The captured version. */
  readonly version: bigint;
  /** Chain hash at `version`, lowercase hex; verified against the checkpoint. */
  readonly headHash: string;
}

/** A JSON stream at a checkpoint. */
export interface ResumedJsonStream extends ResumedStreamBase {
  /** Discriminant. */
  readonly kind: "json";
  /** The state at `version`, from a snapshot whose hash was verified. */
  readonly state: JsonValue;
}

/** An opaque stream at a checkpoint: the application rebuilds its state from these bytes. */
export interface ResumedOpaqueStream extends ResumedStreamBase {
  /** Discriminant. */
  readonly kind: "opaque";
  /** The newest uploaded snapshot at or below `version`, if any. */
  readonly snapshot: Uint8Array | undefined;
  /** The deltas after the snapshot up to `version`, verified, in order. */
  readonly deltas: readonly Uint8Array[];
}

/** The state of one stream at a checkpoint. */
export type ResumedStream = ResumedJsonStream | ResumedOpaqueStream;

/** Everything a device needs to continue where a checkpoint was taken. */
export interface ResumeResult {
  /** The checkpoint, digest verified. */
  readonly checkpoint: Checkpoint;
  /** Where to resume. */
  readonly resume: ResumePayload;
  /** The state of every captured stream at its captured version, verified. */
  readonly streams: readonly ResumedStream[];
}

/**
 * Loads a checkpoint and the state of each of its streams at the captured version, in one
 * call: GetCheckpoint, then GetSnapshot at each entry's version. The digest, every snapshot
 * hash and every chain hash are checked against the checkpoint, so what resumes is exactly
 * what was captured — whichever server or platform it came through.
 *
 * @example
 * ```ts
 * const { resume, streams } = await resumeCheckpoint(phone, handoff.checkpoint);
 * openLesson(resume.resource, resume.position, streams[0]?.kind === "json" ? streams[0].state : undefined);
 * ```
 */
export async function resumeCheckpoint(
  client: ContinuityClient,
  checkpointName: string,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<ResumeResult> {
  const callOptions = options.signal === undefined ? {} : { signal: options.signal };
  const response = await client.checkpoints.getCheckpoint({ name: checkpointName }, callOptions);
  // Presence only: loadCheckpointState verifies the digest itself.
  return loadCheckpointState(client, presentCheckpoint(response.checkpoint), options);
}

/**
 * `resumeCheckpoint` for a checkpoint already in hand (AcceptHandoff returns one).
 *
 * @example
 * ```ts
 * const { checkpoint } = await client.checkpoints.acceptHandoff({ name: handoffName });
 * const { resume, streams } = await loadCheckpointState(client, checkpoint!);
 * navigateTo(resume.resource, resume.position, streams);
 * ```
 */
export async function loadCheckpointState(
  client: ContinuityClient,
  checkpoint: Checkpoint,
  options: { signal?: AbortSignal | undefined } = {},
): Promise<ResumeResult> {
  verifyDigest(checkpoint);
  const streams = await Promise.all(checkpoint.entries.map((entry) => loadEntry(client, entry, options.signal)));
  return { checkpoint, resume: checkpoint.resume ?? toResumePayload({ activityType: "" }), streams };
}

async function loadEntry(
  client: ContinuityClient,
  entry: Checkpoint["entries"][number],
  signal: AbortSignal | undefined,
): Promise<ResumedStream> {
  const { stream } = await client.streams.getStream({ name: entry.stream }, signal === undefined ? {} : { signal });
  if (stream === undefined || stream.uid !== entry.streamUid) {
    throw integrity(entry.stream, "the stream is not the one the checkpoint captured (uid differs)");
  }
  if (stream.encoding !== DeltaEncoding.DELTA_ENCODING_OPAQUE) {
    const snapshot = await fetchVerifiedSnapshot(
      client,
      { stream: entry.stream, version: entry.version },
      { signal, expected: { streamUid: entry.streamUid, version: entry.version, headHash: entry.headHash } },
    );
    return {
      kind: "json",
      name: entry.stream,
      uid: entry.streamUid,
      version: entry.version,
      headHash: toHex(entry.headHash),
      state: parseJsonDocument(snapshot.state),
    };
  }
  let snapshot: Uint8Array | undefined;
  let start = { version: 0n, hash: genesisHash({ uid: stream.uid, type: stream.type, encoding: stream.encoding }) };
  try {
    const found = await fetchVerifiedSnapshot(client, { stream: entry.stream, version: entry.version }, { signal, expected: { streamUid: entry.streamUid } });
    snapshot = found.state;
    start = { version: found.header.version, hash: found.header.headHash };
  } catch (error) {
    if (ContinuityError.from(error).reason !== "SNAPSHOT_NOT_FOUND") throw error;
  }
  const deltas: Delta[] = [];
  let after = start.version;
  while (after < entry.version) {
    const page = await client.streams.listDeltas({ stream: entry.stream, afterVersion: after }, signal === undefined ? {} : { signal });
    const wanted = page.deltas.filter((delta) => delta.version <= entry.version);
    if (wanted.length === 0) break;
    deltas.push(...wanted);
    after = wanted[wanted.length - 1]?.version ?? after;
  }
  const verification = verifyChain({ start, encoding: stream.encoding, deltas });
  if (!verification.ok || verification.headVersion !== entry.version || !bytesEqual(verification.headHash, entry.headHash)) {
    throw integrity(entry.stream, "the opaque history does not lead to the checkpoint's chain hash");
  }
  return {
    kind: "opaque",
    name: entry.stream,
    uid: entry.streamUid,
    version: entry.version,
    headHash: toHex(entry.headHash),
    snapshot,
    deltas: deltas.map((delta) => new Uint8Array(delta.payload)),
  };
}

/**
 * Throws unless the checkpoint's digest matches its entries and resume payload.
 *
 * @example
 * ```ts
 * const { checkpoint } = await client.checkpoints.getCheckpoint({ name });
 * verifyDigest(checkpoint!); // throws DATA_LOSS when the checkpoint was altered
 * ```
 */
export function verifyDigest(checkpoint: Checkpoint): void {
  const digest = checkpointDigest({
    entries: checkpoint.entries.map((entry) => ({ streamUid: entry.streamUid, version: entry.version, headHash: entry.headHash })),
    resume: checkpoint.resume,
  });
  if (!bytesEqual(digest, checkpoint.digest)) {
    throw integrity(checkpoint.name, `checkpoint digest mismatch: computed ${toHex(digest)}, server says ${toHex(checkpoint.digest)}`);
  }
}

/** The checkpoint of an answer, whose digest is verified. */
function requireCheckpoint(checkpoint: Checkpoint | undefined): Checkpoint {
  const present = presentCheckpoint(checkpoint);
  verifyDigest(present);
  return present;
}

function presentCheckpoint(checkpoint: Checkpoint | undefined): Checkpoint {
  if (checkpoint === undefined) throw new ContinuityError({ code: Status.INTERNAL, message: "The server answered without a checkpoint" });
  return checkpoint;
}

/**
 * A full `ResumePayload` from the friendly form.
 *
 * @example
 * ```ts
 * const payload = toResumePayload({ activityType: "org.example.lesson", resource: "course-42", position: "lesson-4/t=312.5" });
 * ```
 */
export function toResumePayload(resume: ResumeInfo): ResumePayload {
  return {
    activityType: resume.activityType,
    resource: resume.resource ?? "",
    position: resume.position ?? "",
    fallbackUrl: resume.fallbackUrl ?? "",
    attributes: { ...resume.attributes },
  };
}

function deviceNameOf(subject: string, device: string): string {
  return device.startsWith("subjects/") ? device : `${subject}/devices/${device}`;
}
