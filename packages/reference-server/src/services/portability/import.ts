import { Status } from "nice-grpc-common";
import { BundleSignatureError, BundleVerificationError, createBundleVerifier, partJson, verifyBundleSignature, type VerifiedPart } from "@continuity/bundle";
import type { JSONWebKeySet } from "jose";
import type { continuity } from "@continuity/sdk/gen";
import { bytesEqual, canonicalJson, checkpointDigest, genesisHash, isPatchNotApplicableError, MAX_JSON_DEPTH, parseJsonDocument, type JsonValue } from "@continuity/sdk/protocol";
import { jsonBounds, refusedBound } from "../materialize.js";
import { checkCanonicalStateSliced } from "../sliced-json.js";
import { StaleHead } from "../json-heads.js";
import { invalidField, protocolError } from "../../errors.js";
import { Encoding, Policy, type AppendHead, type EncodingCode, type ImportedBase, type ImportedDelta, type PolicyCode, type StreamRecord } from "../../store/index.js";
import { DEVICE_ID, MINTED_ID, RESOURCE_ID, STREAM_TYPE, parseChildName } from "../../validation/names.js";
import type { ServiceDeps } from "../deps.js";

/** Account links held back until the signature is judged (a subject has few). */
const MAX_HELD_LINKS = 1000;

/** Deltas stored per transaction while importing: bounded, so memory stays flat for any bundle. */
const DELTA_CHUNK = 256;
const DELTA_CHUNK_BYTES = 1024 * 1024;

/** What an import did, for ImportBundleResponse and migration progress. */
export interface ImportCounts {
  recordsImported: number;
  recordsSkipped: number;
  bytes: number;
}

/** Feeds a bundle into one subject, part by part. */
export interface BundleImporter {
  push(partBytes: Uint8Array): Promise<VerifiedPart>;
  /** Throws unless the trailer was accepted; returns the counts. */
  finish(): ImportCounts;
  readonly counts: Readonly<ImportCounts>;
}

interface CurrentStream {
  readonly wire: continuity.v1.Stream;
  incremental: boolean;
  /** Full or incremental from its horizon, decided by the record after the stream record (PORT-051). */
  undecided: boolean;
  readonly encoding: EncodingCode;
  /** Set once the stream exists on this server. */
  stored: StreamRecord | undefined;
  /** Deltas not stored yet, each with its parsed patch (JSON streams), parsed once when checked. */
  pending: { delta: ImportedDelta; index: number; patch: JsonValue | undefined }[];
  pendingBytes: number;
}

class PatchRejected extends Error {
  constructor(
    readonly version: number,
    override readonly cause: unknown,
  ) {
    super((cause as Error).message);
  }
}

const idOf = (name: string): string => name.slice(name.lastIndexOf("/") + 1);
const platformOf = (name: string): string | undefined => (/^platforms\/([a-z0-9][a-z0-9-]{0,63})$/.exec(name)?.[1]);

/**
 * Imports a bundle into `subjectId` (PORT-020 … PORT-027). Every part is first checked by
 * the shared verifier (chains, order, digest), then stored: a stream when its base is
 * known, deltas in bounded transactions, identity records one by one. Records already
 * there are counted as skipped, so a repeated import stores nothing and an interrupted one
 * is completed by sending the bundle again.
 */
export function createBundleImporter(deps: ServiceDeps, subjectId: string, options: { readonly trustedKeys: JSONWebKeySet }): BundleImporter {
  const { store, limits } = deps;
  const bounds = jsonBounds(limits);
  // Runs are cut where a batch ends; a batch larger than this server's own may be (another
  // server's limits) is cut at these, and its parts are judged apart.
  const maxRunDeltas = Math.max(DELTA_CHUNK, limits.maxBatchDeltas);
  const maxRunBytes = Math.max(DELTA_CHUNK_BYTES, limits.maxBatchBytes);
  const verifier = createBundleVerifier();
  let manifestJson: ReturnType<typeof partJson>;
  // An account link decides whose subject a person's sign-in lands in, so one is imported
  // only from a bundle signed by a key this server trusts; until the trailer says so they wait.
  const heldLinks: { index: number; link: continuity.v1.AccountLink }[] = [];
  // Every delta of one batch carries the same device, sequence and batch fields.
  let batch: { first: number; size: number; device: string; sequence: bigint } | undefined;
  const counts: ImportCounts = { recordsImported: 0, recordsSkipped: 0, bytes: 0 };
  let current: CurrentStream | undefined;
  let done = false;

  const recordField = (index: number, field: string): string => `records[${index}].${field}`;

  const createStream = async (stream: CurrentStream, index: number, base: ImportedBase): Promise<void> => {
    const wire = stream.wire;
    const id = idOf(wire.name);
    const owner = platformOf(wire.ownerPlatform);
    if (owner === undefined) throw invalidField(recordField(index, "stream.owner_platform"), "must be platforms/{platform}");
    const result = await store.importStream({
      subjectId,
      id,
      uid: wire.uid,
      type: wire.type,
      encoding: stream.encoding,
      conflictPolicy: wire.conflictPolicy as number as PolicyCode,
      ownerPlatformId: owner,
      genesisHash: genesisHash({ uid: wire.uid, type: wire.type, encoding: wire.encoding }),
      horizonVersion: Number(wire.horizonVersion),
      horizonHash: wire.horizonHash,
      base,
      createdAt: wire.createTime ?? deps.clock(),
      maxStreamsPerSubject: limits.maxStreamsPerSubject,
      now: deps.clock(),
    });
    switch (result.kind) {
      case "created":
        stream.stored = result.stream;
        counts.recordsImported += 1 + (base.kind === "none" || Number(wire.horizonVersion) === 0 ? 0 : 1);
        return;
      case "exists":
        if (result.stream.encoding !== stream.encoding || result.stream.type !== wire.type || result.stream.conflictPolicy !== (wire.conflictPolicy as number)) {
          throw protocolError(Status.ALREADY_EXISTS, "STREAM_ALREADY_EXISTS", `stream ${id} exists here with another type or encoding`);
        }
        stream.stored = result.stream;
        counts.recordsSkipped += 1 + (Number(wire.horizonVersion) > 0 && !stream.incremental ? 1 : 0);
        return;
      case "id-taken":
        throw protocolError(Status.ALREADY_EXISTS, "STREAM_ALREADY_EXISTS", `the stream id ${id} is taken here by another stream`);
      case "uid-taken":
        throw protocolError(Status.ALREADY_EXISTS, "STREAM_ALREADY_EXISTS", `the stream ${wire.uid} exists here under another id`);
      case "limit-reached":
        throw protocolError(Status.RESOURCE_EXHAUSTED, "STREAM_LIMIT_REACHED", "the subject has too many streams", { limit: String(limits.maxStreamsPerSubject) });
      case "subject-not-found":
        throw protocolError(Status.NOT_FOUND, "SUBJECT_NOT_FOUND", "subject not found");
    }
  };

  const flushDeltas = async (): Promise<void> => {
    const stream = current;
    if (stream === undefined || stream.pending.length === 0) return;
    if (stream.stored === undefined) await createStream(stream, stream.pending[0]!.index, baseAtGenesis(stream.encoding));
    let batch = stream.pending;
    stream.pending = [];
    stream.pendingBytes = 0;
    const encoding = stream.encoding;
    // One transaction applies what one call's bounds allow (applyGroups stops once the
    // batches it applied used more than one append's bounds); the rest goes in the next.
    while (batch.length > 0) {
      let result;
      try {
        // JSON deltas are applied to the head state held in memory (json-heads.ts), like appends;
        // when the held head is not the stored one, it is caught up and the call tried again.
        for (let attempt = 1; ; attempt++) {
          if (encoding !== Encoding.Opaque) await deps.jsonHeads.ensure(stream.stored!);
          let applied: { head: AppendHead; bytes: number; size: number } | undefined;
          result = await store.importDeltas({
            subjectId,
            streamId: stream.stored!.id,
            streamUid: stream.wire.uid,
            deltas: batch.map((b) => b.delta),
            stateAfter:
              encoding === Encoding.Opaque
                ? undefined
                : (head, fresh) => {
                    const held = deps.jsonHeads.at(head.stream);
                    if (held === undefined) throw new StaleHead();
                    const patches = new Map(batch.map((b) => [b.delta.version, b.patch]));
                    // One application for all of them, so a refused delta leaves the held state whole.
                    let version = 0;
                    // The deltas of one appended batch (the same batch_first_version) are judged
                    // together, as their append was; deltas of different batches apart.
                    const groups: ImportedDelta[][] = [];
                    for (const delta of fresh) {
                      const group = groups.at(-1);
                      if (group !== undefined && group[0]!.batchFirstVersion === delta.batchFirstVersion) group.push(delta);
                      else groups.push([delta]);
                    }
                    const payloads = function* (group: readonly ImportedDelta[]) {
                      for (const delta of group) {
                        version = delta.version;
                        yield patches.get(delta.version) ?? delta.payload;
                      }
                    };
                    let taken: number;
                    try {
                      // The same bounds as an append (LIMIT-020/021/023/024): a bundle is input like any other.
                      taken = held.editor.applyGroups(encoding, groups.map(payloads), bounds);
                    } catch (error) {
                      throw new PatchRejected(version, error);
                    }
                    const stored = groups.slice(0, taken).flat();
                    const last = stored[stored.length - 1]!;
                    deps.jsonHeads.advanced(held, last.version, last.hash);
                    applied = { head, bytes: stored.reduce((sum, d) => sum + d.payload.length, 0), size: held.editor.size };
                    return stored.length;
                  },
            now: deps.clock(),
          }).catch((error: unknown) => {
            if (error instanceof StaleHead && attempt < 5) return undefined;
            throw error;
          });
          if (result === undefined) {
            stream.stored = (await store.getStream(subjectId, stream.stored!.id)) ?? stream.stored;
            continue;
          }
          if (result.kind === "imported" && applied !== undefined) {
            const { head, bytes, size } = applied;
            deps.jsonHeads.afterCommit(head.stream, result.stream.headVersion, result.stream.headHash, head.stateLag, bytes, size);
          }
          break;
        }
      } catch (error) {
        if (error instanceof PatchRejected) {
          const at = batch.find((b) => b.delta.version === error.version)?.index ?? batch[0]!.index;
          const bound = isPatchNotApplicableError(error.cause) ? refusedBound(error.cause.reason, limits) : undefined;
          if (bound !== undefined) throw protocolError(Status.RESOURCE_EXHAUSTED, bound.reason, `record ${at}: ${bound.message}`, { limit: String(bound.limit), index: String(at) });
          throw invalidField(recordField(at, "delta.payload"), `cannot be applied to the state it follows: ${error.message}`);
        }
        throw error;
      }
      switch (result.kind) {
        case "imported": {
          stream.stored = result.stream;
          counts.recordsImported += result.imported;
          counts.recordsSkipped += result.skipped;
          const head = result.stream.headVersion;
          const rest = batch.filter((b) => b.delta.version > head);
          // Stryker disable next-line all: a guard against a store that stores none of what is left, which would otherwise loop
          if (rest.length === batch.length) throw new Error(`the store imported none of ${batch.length} deltas of stream ${stream.wire.uid}`);
          batch = rest;
          continue;
        }
        case "stream-not-found":
          throw protocolError(Status.NOT_FOUND, "STREAM_NOT_FOUND", `stream ${stream.wire.uid} was deleted during the import`);
        case "chain-mismatch": {
          const at = batch.find((b) => b.delta.version === result.version)?.index ?? batch[0]!.index;
          throw invalidField(recordField(at, "delta.prev_hash"), `version ${result.version} does not continue the history this server holds for stream ${stream.wire.uid}`);
        }
        case "gap":
          throw protocolError(Status.FAILED_PRECONDITION, "HISTORY_COMPACTED", `stream ${stream.wire.uid} here ends at version ${result.headVersion}, before the bundle's deltas begin`, { horizonVersion: String(result.headVersion) });
      }
    }
  };

  const onStream = async (part: Extract<VerifiedPart, { kind: "stream" }>): Promise<void> => {
    await flushDeltas();
    const wire = part.stream;
    const id = idOf(wire.name);
    if (!RESOURCE_ID.test(id)) throw invalidField(recordField(part.index, "stream.name"), "the stream id must be 1-63 of [a-z0-9-]");
    if (!STREAM_TYPE.test(wire.type)) throw invalidField(recordField(part.index, "stream.type"), "must be a reverse-DNS type name");
    // Stryker disable next-line all: the shared bundle verifier (@continuity/bundle verify.ts) refuses such a record before the importer sees it
    if (wire.conflictPolicy !== Policy.RequireExpectedVersion && wire.conflictPolicy !== Policy.AllowBlindAppend) throw invalidField(recordField(part.index, "stream.conflict_policy"), "unknown conflict policy");
    batch = undefined;
    const stream: CurrentStream = { wire, incremental: part.incremental, undecided: part.snapshotOptional, encoding: wire.encoding as number as EncodingCode, stored: undefined, pending: [], pendingBytes: 0 };
    current = stream;
    // A stream with a horizon whose snapshot record may or may not follow: see push().
    if (part.snapshotOptional) return;
    if (part.incremental) return continueHeld(stream);
    if (wire.horizonVersion === 0n) await createStream(stream, part.index, baseAtGenesis(stream.encoding));
  };

  /** An incremental bundle continues a stream this server already holds (PORT-043). */
  const continueHeld = async (stream: CurrentStream, fromHorizon = false): Promise<void> => {
    const { wire } = stream;
    const id = idOf(wire.name);
    const stored = await store.getStream(subjectId, id);
    if (stored === undefined || stored.uid !== wire.uid) {
      const why = fromHorizon ? ` (no snapshot record follows its stream record, so it continues the stream from its horizon ${wire.horizonVersion}: PORT-051)` : "";
      throw protocolError(Status.NOT_FOUND, "STREAM_NOT_FOUND", `the bundle continues stream ${wire.uid}, which this subject does not hold${why}`);
    }
    if (stored.encoding !== stream.encoding || stored.type !== wire.type || stored.conflictPolicy !== (wire.conflictPolicy as number)) {
      throw protocolError(Status.ALREADY_EXISTS, "STREAM_ALREADY_EXISTS", `stream ${id} exists here with another type, encoding or conflict policy`);
    }
    stream.stored = stored;
    counts.recordsSkipped += 1;
  };

  const onSnapshot = async (part: Extract<VerifiedPart, { kind: "snapshot" }>): Promise<void> => {
    const stream = current!;
    stream.undecided = false;
    const state = part.snapshot.state;
    if (state.length > limits.maxSnapshotBytes) throw protocolError(Status.RESOURCE_EXHAUSTED, "SNAPSHOT_TOO_LARGE", "the snapshot exceeds this server's max_snapshot_bytes", { limit: String(limits.maxSnapshotBytes) });
    let base: ImportedBase;
    if (stream.encoding === Encoding.Opaque) {
      base = { kind: "opaque-snapshot", state, snapshotHash: part.snapshot.header!.snapshotHash };
    } else {
      // Checked in slices: a state may be as large as max_snapshot_bytes (LIMIT-022).
      const problem = await checkCanonicalStateSliced(state, MAX_JSON_DEPTH);
      if (problem?.kind === "invalid") throw invalidField(recordField(part.index, "snapshot.state"), `not a JSON document: ${problem.message}`);
      if (problem !== undefined) throw invalidField(recordField(part.index, "snapshot.state"), `a JSON stream's state must be canonical JSON (RFC 8785): ${problem.message}`);
      base = { kind: "json", state };
    }
    await createStream(stream, part.index, base);
  };

  const onDelta = async (part: Extract<VerifiedPart, { kind: "delta" }>): Promise<void> => {
    const stream = current!;
    const d = part.delta;
    const at = (field: string) => recordField(part.index, `delta.${field}`);
    if (d.payload.length > limits.maxDeltaBytes) throw protocolError(Status.RESOURCE_EXHAUSTED, "DELTA_TOO_LARGE", `record ${part.index}: the delta exceeds this server's max_delta_bytes`, { limit: String(limits.maxDeltaBytes), index: String(part.index) });
    let patch: JsonValue | undefined;
    if (stream.encoding !== Encoding.Opaque) {
      try {
        patch = parseJsonDocument(d.payload);
      } catch (error) {
        throw invalidField(at("payload"), `not a JSON document: ${(error as Error).message}`);
      }
      if (!bytesEqual(canonicalJson(patch), d.payload)) throw invalidField(at("payload"), "a JSON delta must be stored as canonical JSON (RFC 8785)");
    }
    let deviceId: string | undefined;
    if (d.device !== "") {
      const device = parseChildName(d.device, "devices");
      if (device === undefined || !DEVICE_ID.test(device.id)) throw invalidField(at("device"), "must be subjects/{subject}/devices/{device} or empty");
      deviceId = device.id;
    }
    const version = Number(d.version);
    const batchFirst = Number(d.batchFirstVersion);
    // Stryker disable all: the shared bundle verifier (@continuity/bundle verify.ts) refuses such a record before the importer sees it
    if (d.batchSize < 1 || batchFirst > version || version >= batchFirst + d.batchSize || !Number.isSafeInteger(version)) {
      throw invalidField(at("batch_first_version"), `version ${version} does not lie in its batch ${batchFirst} + ${d.batchSize}`);
    }
    // Stryker restore all
    if (d.clientSequence > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidField(at("client_sequence"), "out of range");
    // A stream's first delta in the bundle may sit inside a batch (after a horizon or a held position).
    if (version === batchFirst || batch === undefined) batch = { first: batchFirst, size: d.batchSize, device: d.device, sequence: d.clientSequence };
    // Stryker disable all: the shared bundle verifier (@continuity/bundle verify.ts) refuses such a record before the importer sees it
    if (batch === undefined || batch.first !== batchFirst || batch.size !== d.batchSize || batch.device !== d.device || batch.sequence !== d.clientSequence) {
      throw invalidField(at("batch_first_version"), `version ${version} does not belong to the batch before it (every delta of a batch has the same device, client sequence and batch fields)`);
    }
    // Stryker restore all
    stream.pending.push({
      index: part.index,
      patch,
      delta: {
        version,
        payload: d.payload,
        prevHash: d.prevHash,
        hash: d.hash,
        deviceId,
        clientSequence: deviceId === undefined ? 0 : Number(d.clientSequence),
        batchFirstVersion: batchFirst,
        batchSize: d.batchSize,
        committedAt: d.commitTime ?? deps.clock(),
      },
    });
    stream.pendingBytes += d.payload.length;
    // A run is cut where a batch ends, so that each batch's bounds are judged over all of it
    // (PORT-049), unless the batch is larger than this server's own batches may be.
    const full = stream.pending.length >= DELTA_CHUNK || stream.pendingBytes >= DELTA_CHUNK_BYTES;
    const atMost = stream.pending.length >= maxRunDeltas || stream.pendingBytes >= maxRunBytes;
    if ((full && version === batchFirst + d.batchSize - 1) || atMost) await flushDeltas();
  };

  const importLinks = async (trailer: continuity.v1.BundleTrailer): Promise<void> => {
    let trusted = false;
    // Stryker disable next-line all: the signature decides only whether held links are imported, and the verifier accepted a manifest, so manifestJson is set
    if (heldLinks.length > 0 && manifestJson !== undefined) {
      try {
        await verifyBundleSignature(trailer.signature, { manifest: manifestJson, recordCount: trailer.recordCount, recordsDigest: trailer.recordsDigest }, options.trustedKeys);
        trusted = true;
      } catch (error) {
        // Stryker disable next-line all: verifyBundleSignature throws only BundleSignatureError
        if (!(error instanceof BundleSignatureError)) throw error;
        deps.logger.info({ subject: subjectId, reason: error.message }, "bundle not signed by a trusted key: its account links are skipped");
      }
    }
    for (const { index, link } of heldLinks) {
      const platformId = platformOf(link.platform);
      const id = idOf(link.name);
      if (!trusted || platformId === undefined || deps.tokens.platforms.get(platformId) === undefined || !MINTED_ID.test(id) || link.accountId === "") {
        tally("skipped");
        continue;
      }
      const result = await store.importSubjectRecord("account-link", { subjectId, id, platformId, accountId: link.accountId, createdAt: link.createTime ?? deps.clock() });
      if (result === "linked-elsewhere") throw protocolError(Status.FAILED_PRECONDITION, "ACCOUNT_LINKED_ELSEWHERE", `record ${index}: the account is linked to another subject on this server`);
      tally(result);
    }
    heldLinks.length = 0;
  };

  const tally = (result: "imported" | "skipped"): void => {
    if (result === "imported") counts.recordsImported += 1;
    else counts.recordsSkipped += 1;
  };

  const onIdentity = async (part: VerifiedPart): Promise<void> => {
    await flushDeltas();
    current = undefined;
    const known = (name: string): string | undefined => {
      const id = platformOf(name);
      return id !== undefined && deps.tokens.platforms.get(id) !== undefined ? id : undefined;
    };
    const now = deps.clock();
    switch (part.kind) {
      case "checkpoint": {
        const c = part.checkpoint;
        const id = idOf(c.name);
        if (!RESOURCE_ID.test(id)) throw invalidField(recordField(part.index, "checkpoint.name"), "bad checkpoint id");
        const expected = checkpointDigest({ entries: c.entries.map((e) => ({ streamUid: e.streamUid, version: e.version, headHash: e.headHash })), resume: c.resume });
        if (!bytesEqual(expected, c.digest)) throw invalidField(recordField(part.index, "checkpoint.digest"), "the checkpoint digest does not match its entries and resume payload");
        // Named like a delta's device (PORT-029): empty, or a device of some subject.
        const device = c.device === "" ? undefined : parseChildName(c.device, "devices")?.id;
        if (c.device !== "" && device === undefined) throw invalidField(recordField(part.index, "checkpoint.device"), "must be subjects/{subject}/devices/{device} or empty");
        const resume = c.resume ?? { activityType: "", resource: "", position: "", fallbackUrl: "", attributes: {} };
        tally(
          (await store.importSubjectRecord("checkpoint", {
            subjectId,
            id,
            entries: c.entries.map((e) => ({ streamId: idOf(e.stream), streamUid: e.streamUid, streamType: "", ownerPlatformId: "", version: Number(e.version), headHash: e.headHash })),
            resume: { activityType: resume.activityType, resource: resume.resource, position: resume.position, fallbackUrl: resume.fallbackUrl, attributes: { ...resume.attributes } },
            digest: c.digest,
            deviceId: device,
            platformId: platformOf(c.platform) ?? "",
            createdAt: c.createTime ?? now,
          })) as "imported" | "skipped",
        );
        return;
      }
      case "accountLink": {
        if (heldLinks.length >= MAX_HELD_LINKS) throw protocolError(Status.RESOURCE_EXHAUSTED, "BATCH_TOO_LARGE", `a bundle may carry at most ${MAX_HELD_LINKS} account links`, { limit: String(MAX_HELD_LINKS) });
        heldLinks.push({ index: part.index, link: part.accountLink });
        return;
      }
      case "device": {
        const d = part.device;
        const platformId = known(d.platform);
        const id = idOf(d.name);
        if (platformId === undefined || !DEVICE_ID.test(id)) return tally("skipped");
        return tally((await store.importSubjectRecord("device", { subjectId, id, platformId, displayName: d.displayName.slice(0, 100), createdAt: d.createTime ?? now, revokedAt: d.revokeTime })) as "imported" | "skipped");
      }
      case "grant": {
        const g = part.grant;
        const grantor = known(g.grantorPlatform);
        const grantee = known(g.granteePlatform);
        const id = idOf(g.name);
        if (grantor === undefined || grantee === undefined || !MINTED_ID.test(id)) return tally("skipped");
        const access = g.access === 2 ? "read-write" : "read";
        return tally((await store.importSubjectRecord("grant", { subjectId, id, grantorPlatformId: grantor, granteePlatformId: grantee, streamType: g.streamType, access, createdAt: g.createTime ?? now, revokedAt: g.revokeTime })) as "imported" | "skipped");
      }
      default:
        return;
    }
  };

  return {
    async push(bytes) {
      counts.bytes += bytes.length;
      if (manifestJson === undefined) manifestJson = safePartJson(bytes);
      let part: VerifiedPart;
      try {
        part = await verifier.push(bytes);
      } catch (error) {
        if (error instanceof BundleVerificationError) throw invalidField(error.field, error.message);
        throw error;
      }
      // A stream whose snapshot record was optional (PORT-051): any record but a snapshot
      // record after its stream record makes it incremental from its horizon, as the
      // verifier has just taken it.
      if (current?.undecided === true && part.kind !== "snapshot") {
        current.undecided = false;
        current.incremental = true;
        await continueHeld(current, true);
      }
      switch (part.kind) {
        case "manifest":
          break;
        case "stream":
          await onStream(part);
          break;
        case "snapshot":
          await onSnapshot(part);
          break;
        case "delta":
          await onDelta(part);
          break;
        case "trailer":
          await flushDeltas();
          current = undefined;
          await importLinks(part.trailer);
          done = true;
          break;
        default:
          await onIdentity(part);
      }
      return part;
    },
    finish() {
      if (!done) {
        try {
          verifier.finish();
        } catch (error) {
          if (error instanceof BundleVerificationError) throw invalidField(error.field, error.message);
          throw error;
        }
      }
      return { ...counts };
    },
    get counts() {
      return counts;
    },
  };
}

function safePartJson(bytes: Uint8Array): ReturnType<typeof partJson> {
  try {
    return partJson(bytes);
  } catch {
    return undefined;
  }
}

function baseAtGenesis(encoding: EncodingCode): ImportedBase {
  return encoding === Encoding.Opaque ? { kind: "none" } : { kind: "json", state: canonicalJson({}) };
}
