import {
  bytesEqual,
  canonicalJson,
  checkpointDigest,
  diffJsonStates,
  jsonEquals,
  resumePayloadBytes,
  type JsonValue,
} from "@continuity/sdk/protocol";
import type { continuity } from "@continuity/sdk/gen";
import { deltaHash, deltaHashSliced } from "./hashing.js";
import { Status } from "nice-grpc-common";
import type { AuthCallContextExt, AuthContext } from "../auth/context.js";
import { requireOwnSubject, requireScope } from "../auth/scopes.js";
import { invalidField, protocolError } from "../errors.js";
import type { AppendResult, CheckpointRecord, HandoffRecord, ResumeRecord, StreamRecord } from "../store/types.js";
import { Encoding } from "../store/types.js";
import {
  checkpointNameSchema,
  createCheckpointSchema,
  handoffNameSchema,
  listCheckpointsSchema,
  offerHandoffSchema,
} from "../validation/core-requests.js";
import { streamName } from "../validation/names.js";
import { parseRequest } from "../validation/validate.js";
import { loadAccess, type StreamAccess } from "./access.js";
import {
  aheadOfHead,
  encodingName,
  grantReadOnly,
  historyCompacted,
  requireDevice,
  streamNotFound,
  versionCheckError,
} from "./common.js";
import type { ServiceDeps } from "./deps.js";
import { appendOnHeldHead, StaleHead } from "./json-heads.js";
import { canonicalJsonSliced, diffJsonStatesSliced } from "./sliced-json.js";
import { pageSize } from "./paging.js";
import { handoffStateName, wireCheckpoint, wireHandoff } from "./wire.js";
import { subjectNotFound } from "../auth/wire-errors.js";

type Impl = continuity.v1.CheckpointServiceImplementation<AuthCallContextExt>;

const DEFAULT_PAGE = 50;
const DEFAULT_HANDOFF_TTL_SECONDS = 300;

/** Thrown inside a restore's append when the stream already has the checkpoint's state. */
const UNCHANGED = Symbol("unchanged");
/** Thrown inside a restore's append when the head is no longer the one its delta was diffed against. */
const HEAD_MOVED = Symbol("head moved");
/**
 * Tries of a restore diffed in slices before the head it diffed against moved again; the
 * last try diffs inside the append's transaction, which cannot miss the head, so a restore
 * of a stream that never stops changing still lands (at the cost of one step the state's size).
 */
const SLICED_RESTORE_ATTEMPTS = 4;
/**
 * A compensating delta larger than this is not applied to the held head (one step its size,
 * 1 s for a whole ~60 MiB state): the held head becomes the checkpoint's state itself, whose
 * canonical bytes are then computed in slices beforehand.
 */
const APPLY_AT_ONCE_BYTES = 1024 * 1024;

/**
 * CheckpointService: checkpoints, restore and handoffs.
 *
 * A checkpoint is visible to a platform only when it may read every stream the checkpoint
 * names (decided from the type and owner captured in the entry, so the rule still holds
 * after a stream is deleted); anything else answers NOT_FOUND like a missing checkpoint.
 */
export function createCheckpointService(deps: ServiceDeps): Impl {
  const { store, limits } = deps;

  const checkpointNotFound = () => protocolError(Status.NOT_FOUND, "CHECKPOINT_NOT_FOUND", "checkpoint not found");
  const handoffNotFound = () => protocolError(Status.NOT_FOUND, "HANDOFF_NOT_FOUND", "handoff not found");
  const visible = (checkpoint: CheckpointRecord, access: StreamAccess) =>
    checkpoint.entries.every((e) => access.canRead({ ownerPlatformId: e.ownerPlatformId, type: e.streamType }));

  async function visibleCheckpoint(
    auth: AuthContext,
    name: { subjectId: string; id: string },
    intent: "read" | "write",
  ): Promise<{ checkpoint: CheckpointRecord; access: StreamAccess }> {
    requireOwnSubject(auth, name.subjectId, intent);
    const access = await loadAccess(store, auth);
    const checkpoint = await store.getCheckpoint(name.subjectId, name.id);
    if (checkpoint === undefined || !visible(checkpoint, access)) throw checkpointNotFound();
    return { checkpoint, access };
  }

  /**
   * A handoff the caller may see: it may read every stream its checkpoint held at offer
   * time. Judged on what the handoff recorded, not on the checkpoint, which may have been
   * deleted since; a handoff with nothing recorded is shown to no one (ISO-012).
   */
  async function visibleHandoff(auth: AuthContext, name: { subjectId: string; id: string }): Promise<HandoffRecord> {
    // Stryker disable next-line StringLiteral: requireOwnSubject does not look at the intent, so "" changes nothing
    requireOwnSubject(auth, name.subjectId, "read");
    const handoff = await store.getHandoff(name.subjectId, name.id, deps.clock());
    if (handoff === undefined) throw handoffNotFound();
    const access = await loadAccess(store, auth);
    const streams = handoff.checkpointStreams;
    if (streams.length === 0 || !streams.every((s) => access.canRead(s))) throw handoffNotFound();
    return handoff;
  }

  async function resolve(
    request: { name: string },
    auth: AuthContext,
    resolution: "accepted" | "declined",
  ): Promise<{ handoff: HandoffRecord; checkpoint: CheckpointRecord | undefined }> {
    requireScope(auth, "state.read");
    const { name } = parseRequest(handoffNameSchema, request);
    await visibleHandoff(auth, name);
    const deviceId = requireDevice(auth);
    const result = await store.resolveHandoff({
      subjectId: name.subjectId,
      handoffId: name.id,
      deviceId,
      resolution,
      now: deps.clock(),
    });
    switch (result.kind) {
      case "resolved":
        return result;
      case "not-found":
      case "not-eligible":
        throw handoffNotFound();
      case "already-resolved":
        throw protocolError(Status.FAILED_PRECONDITION, "HANDOFF_RESOLVED", `the handoff is already ${result.handoff.state}`, {
          state: handoffStateName(result.handoff.state),
        });
    }
  }

  /**
   * Appends the delta that turns `stream`'s head into `target` (RESTORE-*). The head is read,
   * diffed, canonicalized and hashed in slices (`sliced-json.ts`) outside the transaction, and
   * the append lands only on the head it was diffed against, so that a concurrent append can
   * never make it restore the wrong state; when the head moved, it is diffed again.
   */
  async function appendCompensation(stream: StreamRecord, target: JsonValue, deviceId: string): Promise<AppendResult> {
    let head = stream;
    for (let attempt = 1; ; attempt++) {
      let planned:
        | {
            readonly version: number;
            readonly headHash: Uint8Array;
            readonly patch: JsonValue | undefined;
            readonly payload: Uint8Array;
            readonly hash: Uint8Array;
            /** The target's canonical bytes, when the delta is too large to apply at once. */
            readonly targetBytes: Uint8Array | undefined;
          }
        | undefined;
      if (attempt < SLICED_RESTORE_ATTEMPTS) {
        const current = await deps.jsonHeads.stateAt(head, head.headVersion);
        if (!("state" in current)) return { kind: "stream-not-found" };
        const patch = await diffJsonStatesSliced(current.state, target, head.encoding === Encoding.JsonPatch ? "json-patch" : "json-merge-patch");
        const payload = patch === undefined ? new Uint8Array(0) : await canonicalJsonSliced(patch);
        const hash = patch === undefined ? new Uint8Array(0) : await deltaHashSliced({ prevHash: current.headHash, version: head.headVersion + 1, encoding: head.encoding, payload });
        const targetBytes = payload.length > APPLY_AT_ONCE_BYTES ? await canonicalJsonSliced(target) : undefined;
        planned = { version: head.headVersion, headHash: current.headHash, patch, payload, hash, targetBytes };
      }
      const result = await appendOnHeldHead(store, deps.jsonHeads, head, {
        subjectId: stream.subjectId,
        streamId: stream.id,
        streamUid: stream.uid,
        deviceId,
        clientSequence: undefined,
        fingerprint: new Uint8Array(32),
        expectedVersion: undefined,
        enforceConflictPolicy: false,
        now: deps.clock(),
        // Known before the append: the store writes it ahead in chunks when it is large.
        ...(planned === undefined ? {} : { expectedPayloads: [planned.payload] }),
        build: ({ stream: at }) => {
          if (planned !== undefined && (at.headVersion !== planned.version || !bytesEqual(at.headHash, planned.headHash))) throw HEAD_MOVED;
          const held = deps.jsonHeads.at(at);
          if (held === undefined) throw new StaleHead();
          let patch: JsonValue;
          let payload: Uint8Array;
          let hash: Uint8Array;
          if (planned !== undefined) {
            if (planned.patch === undefined) throw UNCHANGED;
            if (planned.targetBytes !== undefined) {
              // The sliced diff turns the head exactly into `target`, a value no one else
              // holds (stateAt) and that this restore never reads again: it becomes the head.
              deps.jsonHeads.replaced(held, target, planned.targetBytes, at.headVersion + 1, planned.hash);
              return { deltas: [{ payload: planned.payload, prevHash: at.headHash, hash: planned.hash }] };
            }
            ({ patch, payload, hash } = { patch: planned.patch, payload: planned.payload, hash: planned.hash });
          } else {
            // The last try: the diff of whole states in one step, against the head at commit.
            const current = held.editor.state;
            if (jsonEquals(current, target)) throw UNCHANGED;
            patch = diffJsonStates(current, target, at.encoding);
            payload = canonicalJson(patch);
            hash = deltaHash({ prevHash: at.headHash, version: at.headVersion + 1, encoding: at.encoding, payload });
          }
          held.editor.apply(at.encoding, [patch]);
          deps.jsonHeads.advanced(held, at.headVersion + 1, hash);
          return { deltas: [{ payload, prevHash: at.headHash, hash }] };
        },
      });
      if (!(result.kind === "rejected" && result.error === HEAD_MOVED)) return result;
      const now = await store.getStream(stream.subjectId, stream.id);
      if (now === undefined || now.uid !== stream.uid) return { kind: "stream-not-found" };
      head = now;
    }
  }

  return {
    async createCheckpoint(request, { auth }) {
      requireScope(auth, "state.write");
      const req = parseRequest(createCheckpointSchema, request);
      if (req.streams.length > limits.maxCheckpointStreams) {
        throw invalidField("streams", `at most ${limits.maxCheckpointStreams} streams`);
      }
      const resume: ResumeRecord = {
        activityType: req.resume?.activityType ?? "",
        resource: req.resume?.resource ?? "",
        position: req.resume?.position ?? "",
        fallbackUrl: req.resume?.fallbackUrl ?? "",
        attributes: req.resume?.attributes ?? {},
      };
      const resumeBytes = resumePayloadBytes(resume);
      if (resumeBytes.length > limits.maxResumePayloadBytes) {
        throw protocolError(
          Status.RESOURCE_EXHAUSTED,
          "RESUME_PAYLOAD_TOO_LARGE",
          `the resume payload's canonical JSON is ${resumeBytes.length} bytes`,
          { limit: String(limits.maxResumePayloadBytes) },
        );
      }
      requireOwnSubject(auth, req.parent, "write");
      // A name of another subject inside the request answers as that subject's name does
      // anywhere (ISO-001), whether or not the subject exists.
      if (req.streams.some((s) => s.stream.subjectId !== req.parent)) throw subjectNotFound();
      const access = await loadAccess(store, auth);
      const result = await store.createCheckpoint({
        subjectId: req.parent,
        id: req.checkpointId === "" ? deps.newId() : req.checkpointId,
        selectors: req.streams.map((s) => ({ streamId: s.stream.id, version: s.version })),
        resume,
        deviceId: auth.deviceId,
        platformId: auth.platformId,
        canRead: (stream) => access.canRead(stream),
        digest: (entries) =>
          checkpointDigest({
            entries: entries.map((e) => ({ streamUid: e.streamUid, version: e.version, headHash: e.headHash })),
            resume,
          }),
        now: deps.clock(),
      });
      switch (result.kind) {
        case "created":
          return { checkpoint: wireCheckpoint(result.checkpoint) };
        case "already-exists":
          throw protocolError(Status.ALREADY_EXISTS, "CHECKPOINT_ALREADY_EXISTS", "a checkpoint with this id exists");
        case "stream-not-found":
          throw streamNotFound();
        case "below-horizon":
          throw historyCompacted(result.horizonVersion);
        case "ahead-of-head":
          throw aheadOfHead(result.headVersion);
      }
    },

    async getCheckpoint(request, { auth }) {
      requireScope(auth, "state.read");
      const { name } = parseRequest(checkpointNameSchema, request);
      // Stryker disable next-line StringLiteral: the intent only reaches requireOwnSubject, which does not look at it
      const { checkpoint } = await visibleCheckpoint(auth, name, "read");
      return { checkpoint: wireCheckpoint(checkpoint) };
    },

    async listCheckpoints(request, { auth }) {
      requireScope(auth, "state.read");
      const req = parseRequest(listCheckpointsSchema, request);
      // Stryker disable next-line StringLiteral: requireOwnSubject does not look at the intent, so "" changes nothing
      requireOwnSubject(auth, req.parent, "read");
      // Stryker disable next-line StringLiteral: the key only has to differ from other lists' keys, and ["", parent, platform] still does
      const key = ["ListCheckpoints", req.parent, auth.platformId];
      let after = deps.pageTokens.decode(key, req.pageToken);
      const wanted = pageSize(req.pageSize, DEFAULT_PAGE, limits.maxPageSize);
      const access = await loadAccess(store, auth);
      const found: CheckpointRecord[] = [];
      // Invisible checkpoints are skipped, so a page may need several store reads.
      for (;;) {
        const page = await store.listCheckpoints(req.parent, { after, limit: wanted - found.length });
        found.push(...page.items.filter((c) => visible(c, access)));
        after = page.nextAfter;
        if (after === undefined || found.length >= wanted) break;
      }
      return {
        checkpoints: found.map(wireCheckpoint),
        nextPageToken: after === undefined ? "" : deps.pageTokens.encode(key, after),
      };
    },

    async deleteCheckpoint(request, { auth }) {
      requireScope(auth, "state.write");
      const { name } = parseRequest(checkpointNameSchema, request);
      // Stryker disable next-line StringLiteral: the intent only reaches requireOwnSubject, which does not look at it
      await visibleCheckpoint(auth, name, "write");
      if (!(await store.deleteCheckpoint(name.subjectId, name.id, deps.clock()))) throw checkpointNotFound();
      return {};
    },

    async restoreCheckpoint(request, { auth }) {
      requireScope(auth, "state.write");
      const { name } = parseRequest(checkpointNameSchema, request);
      // Stryker disable next-line StringLiteral: the intent only reaches requireOwnSubject, which does not look at it
      const { checkpoint, access } = await visibleCheckpoint(auth, name, "write");
      const deviceId = requireDevice(auth);

      // Every stream is checked before anything is appended, so a refusal leaves no trace.
      const plans: { entry: (typeof checkpoint.entries)[number]; stream: StreamRecord; target: JsonValue }[] = [];
      for (const entry of checkpoint.entries) {
        const stream = await store.getStream(checkpoint.subjectId, entry.streamId);
        if (stream === undefined || stream.uid !== entry.streamUid || !access.canRead(stream)) throw streamNotFound();
        if (!access.canWrite(stream)) throw grantReadOnly();
        if (stream.encoding === Encoding.Opaque) {
          throw protocolError(
            Status.FAILED_PRECONDITION,
            "ENCODING_UNSUPPORTED",
            "restore appends compensating JSON deltas; opaque streams cannot be restored by the server",
            { encoding: encodingName(stream.encoding) },
          );
        }
        const materialized = await deps.jsonHeads.stateAt(stream, entry.version);
        if (!("state" in materialized)) throw versionCheckError(materialized);
        // The compensating delta is an append that makes this the state (LIMIT-020): a state
        // captured under a larger max_snapshot_bytes than the server has now is refused here,
        // before anything is appended (RESTORE-004), whichever way the delta would be applied.
        if (materialized.size > limits.maxSnapshotBytes) {
          throw protocolError(
            Status.RESOURCE_EXHAUSTED,
            "SNAPSHOT_TOO_LARGE",
            `${streamName(stream.subjectId, stream.id)}: the state at version ${entry.version} is ${materialized.size} bytes, over max_state_bytes (max_snapshot_bytes, ${limits.maxSnapshotBytes} bytes)`,
            { limit: String(limits.maxSnapshotBytes), index: "0" },
          );
        }
        plans.push({ entry, stream, target: materialized.state });
      }

      const restored: continuity.v1.RestoredStream[] = [];
      for (const { entry, stream, target } of plans) {
        const name = streamName(stream.subjectId, stream.id);
        const result = await appendCompensation(stream, target, deviceId);
        if (result.kind === "committed") {
          const receipt = result.outcome.receipts[0]!;
          restored.push({ stream: name, version: BigInt(receipt.version), headHash: Buffer.from(result.outcome.headHash) });
        } else if (result.kind === "rejected" && result.error === UNCHANGED) {
          const current = await store.getStream(stream.subjectId, stream.id);
          restored.push({ stream: name, version: 0n, headHash: Buffer.from((current ?? stream).headHash) });
        } else if (result.kind === "rejected") {
          throw result.error;
        } else if (result.kind === "stream-not-found") {
          throw streamNotFound();
        } else {
          // Without a client sequence or expected version no other outcome is possible.
          throw new Error(`unexpected restore append outcome ${result.kind}`);
        }
      }
      return { streams: restored };
    },

    async offerHandoff(request, { auth }) {
      requireScope(auth, "state.write");
      const req = parseRequest(offerHandoffSchema, request);
      requireOwnSubject(auth, req.parent, "write");
      // The checkpoint and the target device must be the parent's; any other subject's name
      // answers SUBJECT_NOT_FOUND (ISO-001), the checkpoint's through visibleCheckpoint below.
      if (req.targetDevice !== undefined && req.targetDevice.subjectId !== req.parent) throw subjectNotFound();
      const deviceId = requireDevice(auth);
      if (req.targetDevice?.id === deviceId) {
        throw invalidField("target_device", "must be a device other than the caller's");
      }
      // Stryker disable next-line StringLiteral: the intent only reaches requireOwnSubject, which does not look at it
      await visibleCheckpoint(auth, req.checkpoint, "read");
      const now = deps.clock();
      const ttl = req.ttlSeconds === 0 ? DEFAULT_HANDOFF_TTL_SECONDS : req.ttlSeconds;
      const result = await store.createHandoff({
        subjectId: req.parent,
        id: deps.newId(),
        checkpointId: req.checkpoint.id,
        sourceDeviceId: deviceId,
        targetDeviceId: req.targetDevice?.id,
        now,
        expiresAt: new Date(now.getTime() + ttl * 1000),
      });
      switch (result.kind) {
        case "created":
          return { handoff: wireHandoff(result.handoff) };
        case "checkpoint-not-found":
          throw checkpointNotFound();
        case "target-not-found":
          throw protocolError(Status.NOT_FOUND, "DEVICE_NOT_FOUND", "target_device is not an active device of the subject");
      }
    },

    async getHandoff(request, { auth }) {
      requireScope(auth, "state.read");
      const { name } = parseRequest(handoffNameSchema, request);
      return { handoff: wireHandoff(await visibleHandoff(auth, name)) };
    },

    async acceptHandoff(request, { auth }) {
      const { handoff, checkpoint } = await resolve(request, auth, "accepted");
      if (checkpoint === undefined) throw checkpointNotFound();
      return { handoff: wireHandoff(handoff), checkpoint: wireCheckpoint(checkpoint) };
    },

    async declineHandoff(request, { auth }) {
      const { handoff } = await resolve(request, auth, "declined");
      return { handoff: wireHandoff(handoff) };
    },
  };
}
