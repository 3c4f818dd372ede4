import type {
  AccountLinkRecord,
  CheckpointEntryRecord,
  CheckpointRecord,
  DeltaRecord,
  DeviceRecord,
  EncodingCode,
  GrantAccessLevel,
  GrantRecord,
  HandoffRecord,
  HandoffStateName,
  PolicyCode,
  ResumeRecord,
  SnapshotRecord,
  StreamAccessKey,
  StreamRecord,
  SubjectEventBody,
} from "./types.js";

/**
 * Row shapes of the SQL schemas and their mapping to store records. SQLite and PostgreSQL
 * lay out their tables alike (times as epoch milliseconds, hashes as bytes, ids as text), so
 * both backends map rows here and the record shapes are decided in one place.
 */

/** A `streams` row. */
export interface StreamRow {
  subject_id: string;
  stream_id: string;
  uid: string;
  type: string;
  encoding: number;
  conflict_policy: number;
  owner_platform: string;
  genesis_hash: Buffer;
  head_version: number;
  head_hash: Buffer;
  horizon_version: number;
  horizon_hash: Buffer;
  created_at: number;
  updated_at: number;
}

/** Maps a `streams` row. */
export function toStream(row: StreamRow): StreamRecord {
  return {
    subjectId: row.subject_id,
    id: row.stream_id,
    uid: row.uid,
    type: row.type,
    encoding: row.encoding as EncodingCode,
    conflictPolicy: row.conflict_policy as PolicyCode,
    ownerPlatformId: row.owner_platform,
    genesisHash: row.genesis_hash,
    headVersion: row.head_version,
    headHash: row.head_hash,
    horizonVersion: row.horizon_version,
    horizonHash: row.horizon_hash,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

/** A `deltas` row. */
export interface DeltaRow {
  subject_id: string;
  stream_id: string;
  version: number;
  payload: Buffer;
  prev_hash: Buffer;
  hash: Buffer;
  device_id: string | null;
  client_sequence: number;
  batch_first: number;
  batch_size: number;
  committed_at: number;
  /** Set when the payload is kept in chunk rows (`store/state-chunks.ts`); `payload` is then empty. */
  payload_id?: string | null;
  payload_chunks?: number;
  payload_bytes?: number;
}

/** Maps a `deltas` row; a payload kept in chunks is empty here and read by the caller; uid and encoding come from the stream. */
export function toDelta(row: DeltaRow, stream: { uid: string; encoding: number }): DeltaRecord {
  return {
    subjectId: row.subject_id,
    streamId: row.stream_id,
    streamUid: stream.uid,
    version: row.version,
    encoding: stream.encoding as EncodingCode,
    payload: row.payload,
    prevHash: row.prev_hash,
    hash: row.hash,
    deviceId: row.device_id ?? undefined,
    clientSequence: row.client_sequence,
    batchFirstVersion: row.batch_first,
    batchSize: row.batch_size,
    committedAt: new Date(row.committed_at),
  };
}

/** An `account_links` row. */
export interface LinkRow {
  subject_id: string;
  link_id: string;
  platform_id: string;
  account_id: string;
  created_at: number;
  ord: number;
}

/** Maps an `account_links` row. */
export function toLink(row: LinkRow): AccountLinkRecord {
  return {
    subjectId: row.subject_id,
    id: row.link_id,
    platformId: row.platform_id,
    accountId: row.account_id,
    createdAt: new Date(row.created_at),
  };
}

/** A `devices` row. */
export interface DeviceRow {
  subject_id: string;
  device_id: string;
  platform_id: string;
  display_name: string;
  created_at: number;
  revoked_at: number | null;
  ord: number;
}

/** Maps a `devices` row. */
export function toDevice(row: DeviceRow): DeviceRecord {
  return {
    subjectId: row.subject_id,
    id: row.device_id,
    platformId: row.platform_id,
    displayName: row.display_name,
    createdAt: new Date(row.created_at),
    revokedAt: row.revoked_at === null ? undefined : new Date(row.revoked_at),
  };
}

/** A `grants` row. */
export interface GrantRow {
  subject_id: string;
  grant_id: string;
  grantor_platform: string;
  grantee_platform: string;
  stream_type: string;
  access: string;
  created_at: number;
  revoked_at: number | null;
  ord: number;
}

/** Maps a `grants` row. */
export function toGrant(row: GrantRow): GrantRecord {
  return {
    subjectId: row.subject_id,
    id: row.grant_id,
    grantorPlatformId: row.grantor_platform,
    granteePlatformId: row.grantee_platform,
    streamType: row.stream_type,
    access: row.access as GrantAccessLevel,
    createdAt: new Date(row.created_at),
    revokedAt: row.revoked_at === null ? undefined : new Date(row.revoked_at),
  };
}

/** A `snapshots` row. */
export interface SnapshotRow {
  subject_id: string;
  stream_id: string;
  version: number;
  head_hash: Buffer;
  size_bytes: number;
  snapshot_hash: Buffer;
  created_at: number;
}

/** Maps a `snapshots` row. */
export function toSnapshot(row: SnapshotRow): SnapshotRecord {
  return {
    subjectId: row.subject_id,
    streamId: row.stream_id,
    version: row.version,
    headHash: row.head_hash,
    sizeBytes: row.size_bytes,
    snapshotHash: row.snapshot_hash,
    createdAt: new Date(row.created_at),
  };
}

/** A `checkpoints` row. */
export interface CheckpointRow {
  subject_id: string;
  checkpoint_id: string;
  resume: string;
  digest: Buffer;
  device_id: string | null;
  platform_id: string;
  created_at: number;
  ord: number;
}

/** A `checkpoint_entries` row. */
export interface CheckpointEntryRow {
  stream_id: string;
  stream_uid: string;
  stream_type: string;
  owner_platform: string;
  version: number;
  head_hash: Buffer;
}

/** Maps a `checkpoints` row and its entries. */
export function toCheckpoint(row: CheckpointRow, entries: readonly CheckpointEntryRow[]): CheckpointRecord {
  return {
    subjectId: row.subject_id,
    id: row.checkpoint_id,
    entries: entries.map(
      (e): CheckpointEntryRecord => ({
        streamId: e.stream_id,
        streamUid: e.stream_uid,
        streamType: e.stream_type,
        ownerPlatformId: e.owner_platform,
        version: e.version,
        headHash: e.head_hash,
      }),
    ),
    resume: JSON.parse(row.resume) as ResumeRecord,
    digest: row.digest,
    deviceId: row.device_id ?? undefined,
    platformId: row.platform_id,
    createdAt: new Date(row.created_at),
  };
}

/** A `handoffs` row. */
export interface HandoffRow {
  subject_id: string;
  handoff_id: string;
  checkpoint_id: string;
  source_device: string;
  target_device: string | null;
  state: string;
  resolved_by: string | null;
  created_at: number;
  expires_at: number;
  resolved_at: number | null;
  /** JSON `[ownerPlatformId, type][]`, see {@link encodeCheckpointStreams}. */
  checkpoint_streams: string;
}

/** Maps a `handoffs` row. */
export function toHandoff(row: HandoffRow): HandoffRecord {
  return {
    subjectId: row.subject_id,
    id: row.handoff_id,
    checkpointId: row.checkpoint_id,
    checkpointStreams: decodeCheckpointStreams(row.checkpoint_streams),
    sourceDeviceId: row.source_device,
    targetDeviceId: row.target_device ?? undefined,
    state: row.state as HandoffStateName,
    resolvedBy: row.resolved_by ?? undefined,
    createdAt: new Date(row.created_at),
    expiresAt: new Date(row.expires_at),
    resolvedAt: row.resolved_at === null ? undefined : new Date(row.resolved_at),
  };
}

/** The access keys of a checkpoint's entries, as stored with each of its handoffs. */
export function encodeCheckpointStreams(entries: readonly CheckpointEntryRecord[]): string {
  return JSON.stringify(entries.map((e) => [e.ownerPlatformId, e.streamType]));
}

/** Inverse of {@link encodeCheckpointStreams}. */
export function decodeCheckpointStreams(text: string): StreamAccessKey[] {
  return (JSON.parse(text) as [string, string][]).map(([ownerPlatformId, type]) => ({ ownerPlatformId, type }));
}

/**
 * Event bodies are stored as JSON with bytes and dates tagged, so that a record read back
 * from the log is the same shape as the one that was written. Delta payloads are not
 * copied into the log: `deltas-appended` is stored without them and joined on read.
 */
export function encodeEventBody(body: SubjectEventBody): string {
  const stored = body.kind === "deltas-appended" ? { ...body, deltas: [] } : body;
  return JSON.stringify(tag(stored));
}

/** Inverse of {@link encodeEventBody}. */
export function decodeEventBody(text: string): SubjectEventBody {
  return untag(JSON.parse(text)) as SubjectEventBody;
}

function tag(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $b: Buffer.from(value).toString("base64") };
  if (value instanceof Date) return { $d: value.getTime() };
  if (Array.isArray(value)) return value.map(tag);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = tag(v);
    return out;
  }
  return value;
}

function untag(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(untag);
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    if (typeof obj["$b"] === "string") return Buffer.from(obj["$b"], "base64");
    if (typeof obj["$d"] === "number") return new Date(obj["$d"]);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = untag(v);
    return out;
  }
  return value;
}

/** Stored append outcomes, JSON with hex hashes. */
export function encodeOutcome(outcome: {
  receipts: readonly { version: number; hash: Uint8Array }[];
  headVersion: number;
  headHash: Uint8Array;
}): string {
  return JSON.stringify({
    r: outcome.receipts.map((r) => [r.version, Buffer.from(r.hash).toString("hex")]),
    v: outcome.headVersion,
    h: Buffer.from(outcome.headHash).toString("hex"),
  });
}

/** Inverse of {@link encodeOutcome}. */
export function decodeOutcome(text: string): {
  receipts: { version: number; hash: Uint8Array }[];
  headVersion: number;
  headHash: Uint8Array;
} {
  const raw = JSON.parse(text) as { r: [number, string][]; v: number; h: string };
  return {
    receipts: raw.r.map(([version, hash]) => ({ version, hash: Buffer.from(hash, "hex") })),
    headVersion: raw.v,
    headHash: Buffer.from(raw.h, "hex"),
  };
}

const NO_HASH = Buffer.alloc(0);

/**
 * What the SQLite store keeps as a delta's prev_hash: an empty blob when it only repeats the
 * previous delta's hash (or the horizon's), which reading fills back in; the bytes otherwise.
 */
export function storedPrevHash(prevHash: Uint8Array, previous: Uint8Array): Uint8Array {
  return Buffer.from(prevHash).equals(previous) ? NO_HASH : prevHash;
}
