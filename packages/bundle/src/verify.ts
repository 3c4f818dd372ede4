/**
 * A streaming verifier of bundles (docs/spec/portability.md): fed one part at a time, it
 * checks the framing of the parts, the record order, each stream's records against its
 * manifest summary, every hash chain, each snapshot hash, the record count, the records
 * digest and, given a key set, the signature — holding no more than one part and a
 * per-stream summary in memory. The importer in the reference server and the CLI's
 * `verify` share it, so that a bundle one accepts the other accepts too.
 */
import type { JsonValue } from "@bufbuild/protobuf";
import { continuity } from "@continuity/sdk/gen";
import { createHash } from "node:crypto";
import { setImmediate as nextTurn } from "node:timers/promises";
import { bytesEqual, deltaPreimageHeader, genesisHash, snapshotPreimageHeader, toHex, type DeltaHashInput, type SnapshotHashInput } from "@continuity/sdk/protocol";
import type { JSONWebKeySet } from "jose";
import { createRecordsDigest, type DigestPieces } from "./digest.js";
import { partJson, recordDigestPieces } from "./proto-json.js";
import { BundleSignatureError, verifyBundleSignature } from "./signature.js";

const v1 = continuity.v1;
type Manifest = continuity.v1.BundleManifest;
type Summary = continuity.v1.BundleStreamSummary;
type Trailer = continuity.v1.BundleTrailer;

// The SDK's hashes are pure JS for browsers; a verifier runs in Node, where node:crypto's
// SHA-256 is several times faster over the same preimages. Header and bulk bytes are fed
// apart, so a payload is hashed where it lies in the part, never copied into a preimage.
const deltaHash = (input: DeltaHashInput): Uint8Array =>
  createHash("sha256").update(deltaPreimageHeader({ ...input, payloadLength: input.payload.length })).update(input.payload).digest();
/** A state of up to tens of megabytes, hashed a megabyte per turn of the event loop. */
const snapshotHash = async (input: SnapshotHashInput): Promise<Uint8Array> => {
  const hash = createHash("sha256").update(snapshotPreimageHeader({ ...input, sizeBytes: input.state.length }));
  for (let at = 0; at < input.state.length; at += 1 << 20) {
    if (at > 0) await nextTurn();
    hash.update(input.state.subarray(at, at + (1 << 20)));
  }
  return hash.digest();
};

/** The bundle format version this verifier reads. */
export const BUNDLE_FORMAT_VERSION = 1;

/** The first problem found in a bundle: which part and field, and what is wrong. */
export class BundleVerificationError extends Error {
  override readonly name = "BundleVerificationError";
  constructor(
    /** The proto field path of what is wrong: `manifest.streams`, `records[12].delta.hash`, `trailer.records_digest`. */
    readonly field: string,
    message: string,
    /** The 0-based index of the record among the records, when a record is at fault. */
    readonly recordIndex?: number,
  ) {
    super(message);
  }
}

/** One part as the verifier accepted it. */
export type VerifiedPart =
  | { readonly kind: "manifest"; readonly manifest: Manifest }
  | {
      readonly kind: "stream";
      readonly index: number;
      readonly stream: continuity.v1.Stream;
      readonly summary: Summary;
      /** True when the bundle holds only the deltas after a position the receiver named. */
      readonly incremental: boolean;
      /**
       * True when the manifest alone cannot tell (PORT-051): the stream has a horizon above 0
       * and as many delta records as lie above it, which a full export and an incremental one
       * from the horizon both give. The next record decides: a `snapshot` record makes the
       * stream full, any other record makes it incremental from its horizon, its chain's start
       * unknown here (the receiver checks it against what it holds, PORT-043).
       */
      readonly snapshotOptional: boolean;
    }
  | { readonly kind: "snapshot"; readonly index: number; readonly snapshot: continuity.v1.BundleSnapshot; readonly stream: continuity.v1.Stream }
  | { readonly kind: "delta"; readonly index: number; readonly delta: continuity.v1.Delta; readonly stream: continuity.v1.Stream }
  | { readonly kind: "checkpoint"; readonly index: number; readonly checkpoint: continuity.v1.Checkpoint }
  | { readonly kind: "accountLink"; readonly index: number; readonly accountLink: continuity.v1.AccountLink }
  | { readonly kind: "device"; readonly index: number; readonly device: continuity.v1.Device }
  | { readonly kind: "grant"; readonly index: number; readonly grant: continuity.v1.Grant }
  | { readonly kind: "trailer"; readonly trailer: Trailer; readonly signedBy: string | undefined };

/** Options of {@link createBundleVerifier}. */
export interface BundleVerifierOptions {
  /** Keys the caller trusts: when given, the trailer's signature must verify with one of them. */
  readonly jwks?: JSONWebKeySet;
}

/** Feeds a bundle part by part; see the module comment. */
export interface BundleVerifier {
  /** Checks the next part (its protobuf bytes) and returns it decoded; throws {@link BundleVerificationError}. */
  push(partBytes: Uint8Array): Promise<VerifiedPart>;
  /** Throws unless a trailer was accepted. */
  finish(): { readonly manifest: Manifest; readonly trailer: Trailer; readonly recordsDigest: Uint8Array; readonly signedBy: string | undefined };
}

const IDENTITY_ORDER = ["checkpoint", "accountLink", "device", "grant"] as const;
type IdentityKind = (typeof IDENTITY_ORDER)[number];
const LOWERCASE_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface OpenStream {
  readonly stream: continuity.v1.Stream;
  readonly summary: Summary;
  /** Decided at the stream record, or by the record after it when `snapshotOptional`. */
  incremental: boolean;
  readonly firstDeltaVersion: bigint;
  /** Whether a snapshot record may come next, and only a snapshot record decides the stream is full. */
  snapshotOptional: boolean;
  /** Whether a snapshot record must come before the deltas (and has not yet). */
  snapshotPending: boolean;
  /** Chain position reached; `hash` undefined while an incremental stream's start is unknown. */
  version: bigint;
  hash: Uint8Array | undefined;
  deltas: bigint;
  /** The batch the last delta belonged to: every delta of a batch carries the same fields. */
  batch: { readonly first: bigint; readonly size: number; readonly device: string; readonly sequence: bigint } | undefined;
}

/** Creates a verifier for one bundle. */
export function createBundleVerifier(options: BundleVerifierOptions = {}): BundleVerifier {
  const digest = createRecordsDigest();
  let manifest: Manifest | undefined;
  let manifestJson: JsonValue | undefined;
  let trailer: Trailer | undefined;
  let recordsDigest: Uint8Array | undefined;
  let signedBy: string | undefined;
  const summaries = new Map<string, Summary>();
  const seen = new Set<string>();
  let lastUid = "";
  let open: OpenStream | undefined;
  let identityStage = -1; // index into IDENTITY_ORDER once past the streams
  let lastIdentityName = "";
  let index = -1;

  const bad = (field: string, message: string, recordIndex?: number): never => {
    throw new BundleVerificationError(field, message, recordIndex);
  };

  /** A stream whose snapshot record was optional and did not come: incremental from its horizon (PORT-051). */
  const continuesFromHorizon = (): void => {
    if (open === undefined || !open.snapshotOptional) return;
    open.snapshotOptional = false;
    open.snapshotPending = false;
    open.incremental = true;
  };

  const closeStream = (): void => {
    if (open === undefined) return;
    const { stream, summary } = open;
    const at = `the stream ${stream.uid}`;
    continuesFromHorizon();
    if (open.snapshotPending) bad(`records[${index}]`, `${at} has horizon ${summary.horizonVersion} but no snapshot record`, index);
    if (open.deltas !== summary.deltaCount) bad("manifest.streams", `${at}: the manifest counts ${summary.deltaCount} delta records, the bundle holds ${open.deltas}`);
    if (open.version !== summary.headVersion) bad("manifest.streams", `${at}: its deltas end at version ${open.version}, the manifest says the head is ${summary.headVersion}`);
    if (open.hash !== undefined && !bytesEqual(open.hash, summary.headHash)) bad("manifest.streams", `${at}: its chain ends in ${toHex(open.hash)}, the manifest's head hash is ${toHex(summary.headHash)}`);
    open = undefined;
  };

  const onStream = (record: continuity.v1.Stream): VerifiedPart => {
    closeStream();
    if (identityStage >= 0) bad(`records[${index}]`, "a stream record after the checkpoint, account link, device or grant records", index);
    const summary = summaries.get(record.uid);
    if (summary === undefined) bad(`records[${index}].stream.uid`, `the stream ${record.uid} is not in the manifest`, index);
    if (seen.has(record.uid)) bad(`records[${index}].stream.uid`, `the stream ${record.uid} comes twice`, index);
    if (record.uid <= lastUid) bad(`records[${index}].stream.uid`, `streams must come ordered by uid: ${record.uid} after ${lastUid}`, index);
    seen.add(record.uid);
    lastUid = record.uid;
    const s = summary!;
    const id = record.name.slice(record.name.lastIndexOf("/") + 1);
    const mismatch = (field: string, manifestValue: unknown, recordValue: unknown): never => bad(`records[${index}].stream.${field}`, `the stream ${record.uid}: manifest says ${field} ${String(manifestValue)}, its stream record ${String(recordValue)}`, index);
    if (id !== s.streamId) mismatch("name", s.streamId, record.name);
    if (record.type !== s.type) mismatch("type", s.type, record.type);
    if (record.headVersion !== s.headVersion) mismatch("head_version", s.headVersion, record.headVersion);
    if (!bytesEqual(record.headHash, s.headHash)) mismatch("head_hash", toHex(s.headHash), toHex(record.headHash));
    if (record.horizonVersion !== s.horizonVersion) mismatch("horizon_version", s.horizonVersion, record.horizonVersion);
    if (record.horizonHash.length !== 32) bad(`records[${index}].stream.horizon_hash`, `the stream ${record.uid} has a horizon hash of ${record.horizonHash.length} bytes`, index);
    if (![1, 2, 3].includes(record.encoding)) bad(`records[${index}].stream.encoding`, `the stream ${record.uid} has no known encoding (${record.encoding})`, index);
    if (![1, 2].includes(record.conflictPolicy)) bad(`records[${index}].stream.conflict_policy`, `the stream ${record.uid} has no known conflict policy (${record.conflictPolicy})`, index);
    const retained = s.headVersion - s.horizonVersion;
    if (s.deltaCount > retained) bad("manifest.streams", `the stream ${record.uid}: ${s.deltaCount} delta records cannot fit between horizon ${s.horizonVersion} and head ${s.headVersion}`);
    const incremental = s.deltaCount < retained;
    // Full, or incremental from the horizon: the next record tells (PORT-051).
    const snapshotOptional = s.deltaCount === retained && s.horizonVersion > 0n;
    const firstDeltaVersion = s.headVersion - s.deltaCount + 1n;
    const genesis = genesisHash({ uid: record.uid, type: record.type, encoding: record.encoding });
    open = {
      stream: record,
      summary: s,
      incremental,
      firstDeltaVersion,
      snapshotOptional,
      snapshotPending: !incremental && s.horizonVersion > 0n,
      version: incremental ? firstDeltaVersion - 1n : s.horizonVersion,
      hash: incremental ? undefined : s.horizonVersion === 0n ? genesis : undefined,
      deltas: 0n,
      batch: undefined,
    };
    if (s.horizonVersion === 0n && !bytesEqual(genesis, record.horizonHash)) {
      bad(`records[${index}].stream.horizon_hash`, `the stream ${record.uid} has horizon 0, so its horizon hash must be its genesis hash ${toHex(genesis)}`, index);
    }
    if (!incremental && s.horizonVersion === 0n && s.headVersion === 0n && !bytesEqual(genesis, s.headHash)) {
      bad(`records[${index}].stream.head_hash`, `the stream ${record.uid} has no deltas, so its head hash must be its genesis hash ${toHex(genesis)}`, index);
    }
    return { kind: "stream", index, stream: record, summary: s, incremental, snapshotOptional };
  };

  const onSnapshot = async (snapshot: continuity.v1.BundleSnapshot): Promise<VerifiedPart> => {
    const at = `records[${index}].snapshot`;
    if (open === undefined || !open.snapshotPending) return bad(at, "a snapshot record where none belongs (only right after the stream record of a stream with a horizon)", index);
    const { stream } = open;
    const header = snapshot.header;
    if (header === undefined) return bad(`${at}.header`, "the snapshot has no header", index);
    if (header.stream !== "") bad(`${at}.header.stream`, "a bundle snapshot's stream name must be empty (names are not portable)", index);
    if (header.streamUid !== stream.uid) bad(`${at}.header.stream_uid`, `the snapshot names ${header.streamUid}, not ${stream.uid}`, index);
    if (header.version !== stream.horizonVersion) bad(`${at}.header.version`, `the snapshot is at version ${header.version}, the stream's horizon is ${stream.horizonVersion}`, index);
    if (!bytesEqual(header.headHash, stream.horizonHash)) bad(`${at}.header.head_hash`, "the snapshot's head hash is not the stream's horizon hash", index);
    if (header.encoding !== stream.encoding) bad(`${at}.header.encoding`, "the snapshot's encoding is not the stream's", index);
    if (header.sizeBytes !== BigInt(snapshot.state.length)) bad(`${at}.header.size_bytes`, `the header says ${header.sizeBytes} bytes, the state has ${snapshot.state.length}`, index);
    const expected = await snapshotHash({ streamUid: stream.uid, version: header.version, headHash: header.headHash, encoding: stream.encoding, state: snapshot.state });
    if (!bytesEqual(expected, header.snapshotHash)) bad(`${at}.header.snapshot_hash`, `the snapshot hash does not verify against its state (expected ${toHex(expected)})`, index);
    open.snapshotPending = false;
    open.snapshotOptional = false;
    open.hash = header.headHash;
    return { kind: "snapshot", index, snapshot, stream };
  };

  const onDelta = (delta: continuity.v1.Delta): VerifiedPart => {
    const at = `records[${index}].delta`;
    if (open === undefined) return bad(at, "a delta record outside a stream's records", index);
    continuesFromHorizon();
    if (open.snapshotPending) bad(at, `the stream ${open.stream.uid} needs its snapshot record before its deltas`, index);
    const { stream } = open;
    if (delta.streamUid !== stream.uid) bad(`${at}.stream_uid`, `a delta of ${delta.streamUid} among the records of ${stream.uid}`, index);
    const expectedVersion = open.version + 1n;
    if (delta.version !== expectedVersion) bad(`${at}.version`, `the stream ${stream.uid} expects version ${expectedVersion} next, the record is version ${delta.version}`, index);
    // Batch fields: the delta lies inside its batch, and a batch's deltas agree on them.
    const inBatch = delta.batchSize >= 1 && delta.batchFirstVersion >= 1n && delta.batchFirstVersion <= delta.version && delta.version < delta.batchFirstVersion + BigInt(delta.batchSize);
    if (!inBatch) bad(`${at}.batch_first_version`, `version ${delta.version} of ${stream.uid} does not lie in its batch (first ${delta.batchFirstVersion}, size ${delta.batchSize})`, index);
    if (delta.version === delta.batchFirstVersion || open.batch === undefined) {
      open.batch = { first: delta.batchFirstVersion, size: delta.batchSize, device: delta.device, sequence: delta.clientSequence };
    } else if (open.batch.first !== delta.batchFirstVersion || open.batch.size !== delta.batchSize || open.batch.device !== delta.device || open.batch.sequence !== delta.clientSequence) {
      bad(`${at}.batch_first_version`, `version ${delta.version} of ${stream.uid} does not belong to the batch before it: every delta of a batch has the same device, client sequence and batch fields`, index);
    }
    if (delta.encoding !== stream.encoding) bad(`${at}.encoding`, `version ${delta.version} of ${stream.uid} has another encoding than its stream`, index);
    const prev = open.hash ?? delta.prevHash;
    if (!bytesEqual(delta.prevHash, prev)) bad(`${at}.prev_hash`, `version ${delta.version} of ${stream.uid} does not continue the chain: prev_hash ${toHex(delta.prevHash)}, expected ${toHex(prev)}`, index);
    if (prev.length !== 32) bad(`${at}.prev_hash`, `version ${delta.version} of ${stream.uid} has a prev_hash of ${prev.length} bytes`, index);
    const recomputed = deltaHash({ prevHash: prev, version: delta.version, encoding: stream.encoding, payload: delta.payload });
    if (!bytesEqual(recomputed, delta.hash)) bad(`${at}.hash`, `version ${delta.version} of ${stream.uid} breaks the hash chain: its hash is ${toHex(delta.hash)}, its bytes give ${toHex(recomputed)}`, index);
    open.version = delta.version;
    open.hash = recomputed;
    open.deltas += 1n;
    return { kind: "delta", index, delta, stream };
  };

  const onIdentity = (kind: IdentityKind, name: string, part: VerifiedPart): VerifiedPart => {
    closeStream();
    const stage = IDENTITY_ORDER.indexOf(kind);
    if (stage < identityStage) bad(`records[${index}]`, `a ${kind} record after the ${IDENTITY_ORDER[identityStage]} records (order: checkpoints, account links, devices, grants)`, index);
    if (stage > identityStage) lastIdentityName = "";
    if (name <= lastIdentityName) bad(`records[${index}].${kind}.name`, `${kind} records must come ordered by name: ${name} after ${lastIdentityName}`, index);
    identityStage = stage;
    lastIdentityName = name;
    return part;
  };

  const onManifest = (value: Manifest, json: JsonValue | undefined): VerifiedPart => {
    if (value.formatVersion !== BUNDLE_FORMAT_VERSION) bad("manifest.format_version", `bundle format version ${value.formatVersion} is not ${BUNDLE_FORMAT_VERSION}`);
    for (const summary of value.streams) {
      if (!LOWERCASE_UUID.test(summary.streamUid)) bad("manifest.streams", `stream uid ${JSON.stringify(summary.streamUid)} is not a lowercase UUID`);
      if (summaries.has(summary.streamUid)) bad("manifest.streams", `the stream ${summary.streamUid} is listed twice`);
      if (summary.headHash.length !== 32) bad("manifest.streams", `the stream ${summary.streamUid} has a head hash of ${summary.headHash.length} bytes`);
      summaries.set(summary.streamUid, summary);
    }
    manifest = value;
    manifestJson = json;
    return { kind: "manifest", manifest: value };
  };

  const onTrailer = async (value: Trailer): Promise<VerifiedPart> => {
    closeStream();
    for (const uid of summaries.keys()) if (!seen.has(uid)) bad("manifest.streams", `the manifest lists the stream ${uid}, but the bundle has no records of it`);
    if (value.recordCount !== digest.count) bad("trailer.record_count", `the trailer counts ${value.recordCount} records, the bundle holds ${digest.count}`);
    const computed = digest.digest();
    if (!bytesEqual(value.recordsDigest, computed)) bad("trailer.records_digest", `the records digest is ${toHex(value.recordsDigest)}, the records give ${toHex(computed)}`);
    if (options.jwks !== undefined) {
      try {
        ({ kid: signedBy } = await verifyBundleSignature(value.signature, { manifest: manifestJson!, recordCount: value.recordCount, recordsDigest: computed }, options.jwks));
      } catch (error) {
        if (error instanceof BundleSignatureError) bad("trailer.signature", error.message);
        throw error;
      }
    }
    trailer = value;
    recordsDigest = computed;
    return { kind: "trailer", trailer: value, signedBy };
  };

  return {
    async push(bytes) {
      if (trailer !== undefined) bad("trailer", "a part after the trailer");
      let decoded: continuity.v1.ExportSubjectResponse;
      let json: JsonValue | undefined;
      let pieces: DigestPieces | undefined;
      try {
        decoded = v1.ExportSubjectResponse.decode(bytes);
        if (decoded.part?.$case === "manifest") json = partJson(bytes);
        else if (decoded.part?.$case === "record") pieces = recordDigestPieces(bytes);
      } catch (error) {
        return bad(manifest === undefined ? "manifest" : `records[${index + 1}]`, `a part that is not a protobuf ExportSubjectResponse: ${(error as Error).message}`);
      }
      const part = decoded.part;
      if (part === undefined) return bad(manifest === undefined ? "manifest" : `records[${index + 1}]`, "a part with none of manifest, record or trailer set");
      if (manifest === undefined) {
        if (part.$case !== "manifest") return bad("manifest", `the first part must be the manifest, not a ${part.$case}`);
        return onManifest(part.value, json);
      }
      if (part.$case === "manifest") return bad("manifest", "a second manifest");
      if (part.$case === "trailer") return onTrailer(part.value);
      index += 1;
      // A snapshot's state may be tens of megabytes: digested in slices (the reference server's LIMIT-022).
      if (pieces!.bulk.length > 1 << 20) await digest.addPiecesSliced(pieces!);
      else digest.addPieces(pieces!);
      const record = part.value.record;
      if (record === undefined) return bad(`records[${index}]`, "a record with nothing in it", index);
      switch (record.$case) {
        case "stream":
          return onStream(record.value);
        case "snapshot":
          return onSnapshot(record.value);
        case "delta":
          return onDelta(record.value);
        case "checkpoint":
          return onIdentity("checkpoint", record.value.name, { kind: "checkpoint", index, checkpoint: record.value });
        case "accountLink":
          return onIdentity("accountLink", record.value.name, { kind: "accountLink", index, accountLink: record.value });
        case "device":
          return onIdentity("device", record.value.name, { kind: "device", index, device: record.value });
        case "grant":
          return onIdentity("grant", record.value.name, { kind: "grant", index, grant: record.value });
      }
    },
    finish() {
      if (manifest === undefined) bad("manifest", "the bundle is empty");
      if (trailer === undefined) bad("trailer", "the bundle ends without a trailer");
      return { manifest: manifest!, trailer: trailer!, recordsDigest: recordsDigest!, signedBy };
    },
  };
}
