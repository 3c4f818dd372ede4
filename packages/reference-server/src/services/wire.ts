import { continuity } from "@continuity/sdk/gen";
import type {
  CheckpointRecord,
  DeltaRecord,
  HandoffRecord,
  HandoffStateName,
  ResumeRecord,
  StreamRecord,
} from "../store/types.js";
import { checkpointName, deviceName, handoffName, platformName, streamName } from "../validation/names.js";

/**
 * Store records → continuity.v1 messages. The only place that knows both shapes, so the
 * store stays free of protobuf types and every service renders a resource the same way.
 */

const v1 = continuity.v1;

const bytes = (value: Uint8Array): Buffer => Buffer.from(value.buffer, value.byteOffset, value.byteLength);

/** A stream resource. */
export function wireStream(stream: StreamRecord): continuity.v1.Stream {
  return {
    name: streamName(stream.subjectId, stream.id),
    uid: stream.uid,
    type: stream.type,
    encoding: stream.encoding as number as continuity.v1.DeltaEncoding,
    conflictPolicy: stream.conflictPolicy as number as continuity.v1.ConflictPolicy,
    headVersion: BigInt(stream.headVersion),
    headHash: bytes(stream.headHash),
    horizonVersion: BigInt(stream.horizonVersion),
    horizonHash: bytes(stream.horizonHash),
    ownerPlatform: platformName(stream.ownerPlatformId),
    createTime: stream.createdAt,
    updateTime: stream.updatedAt,
  };
}

/** A delta. */
/**
 * The header of a snapshot transfer: what the stream is, and the version, chain hash, size
 * and snapshot hash of the state that follows.
 */
export function wireSnapshotHeader(
  stream: StreamRecord,
  snapshot: { readonly version: number; readonly headHash: Uint8Array; readonly sizeBytes: number; readonly snapshotHash: Uint8Array },
): continuity.v1.SnapshotHeader {
  return {
    stream: streamName(stream.subjectId, stream.id),
    streamUid: stream.uid,
    version: BigInt(snapshot.version),
    headHash: Buffer.from(snapshot.headHash),
    encoding: stream.encoding,
    sizeBytes: BigInt(snapshot.sizeBytes),
    snapshotHash: Buffer.from(snapshot.snapshotHash),
  };
}

export function wireDelta(delta: DeltaRecord): continuity.v1.Delta {
  return {
    stream: streamName(delta.subjectId, delta.streamId),
    streamUid: delta.streamUid,
    version: BigInt(delta.version),
    encoding: delta.encoding as number as continuity.v1.DeltaEncoding,
    payload: bytes(delta.payload),
    prevHash: bytes(delta.prevHash),
    hash: bytes(delta.hash),
    device: delta.deviceId === undefined ? "" : deviceName(delta.subjectId, delta.deviceId),
    clientSequence: BigInt(delta.clientSequence),
    batchFirstVersion: BigInt(delta.batchFirstVersion),
    batchSize: delta.batchSize,
    commitTime: delta.committedAt,
  };
}

/** A resume payload. */
export function wireResume(resume: ResumeRecord): continuity.v1.ResumePayload {
  return { ...resume, attributes: { ...resume.attributes } };
}

/** A checkpoint. */
export function wireCheckpoint(checkpoint: CheckpointRecord): continuity.v1.Checkpoint {
  return {
    name: checkpointName(checkpoint.subjectId, checkpoint.id),
    entries: checkpoint.entries.map((e) => ({
      stream: streamName(checkpoint.subjectId, e.streamId),
      streamUid: e.streamUid,
      version: BigInt(e.version),
      headHash: bytes(e.headHash),
    })),
    resume: wireResume(checkpoint.resume),
    digest: bytes(checkpoint.digest),
    device: checkpoint.deviceId === undefined ? "" : deviceName(checkpoint.subjectId, checkpoint.deviceId),
    platform: platformName(checkpoint.platformId),
    createTime: checkpoint.createdAt,
  };
}

/** The enum name of a handoff state, as HANDOFF_RESOLVED metadata carries it. */
export function handoffStateName(state: HandoffStateName): string {
  return continuity.v1.handoffStateToJSON(HANDOFF_STATES[state]);
}

const HANDOFF_STATES: Record<HandoffStateName, continuity.v1.HandoffState> = {
  offered: v1.HandoffState.HANDOFF_STATE_OFFERED,
  accepted: v1.HandoffState.HANDOFF_STATE_ACCEPTED,
  declined: v1.HandoffState.HANDOFF_STATE_DECLINED,
  expired: v1.HandoffState.HANDOFF_STATE_EXPIRED,
};

/** A handoff. */
export function wireHandoff(handoff: HandoffRecord): continuity.v1.Handoff {
  return {
    name: handoffName(handoff.subjectId, handoff.id),
    checkpoint: checkpointName(handoff.subjectId, handoff.checkpointId),
    sourceDevice: deviceName(handoff.subjectId, handoff.sourceDeviceId),
    targetDevice: handoff.targetDeviceId === undefined ? "" : deviceName(handoff.subjectId, handoff.targetDeviceId),
    state: HANDOFF_STATES[handoff.state],
    resolvedBy: handoff.resolvedBy === undefined ? "" : deviceName(handoff.subjectId, handoff.resolvedBy),
    createTime: handoff.createdAt,
    expireTime: handoff.expiresAt,
    resolveTime: handoff.resolvedAt,
  };
}
