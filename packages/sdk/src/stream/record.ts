import { Status } from "nice-grpc-common";
import { ContinuityError } from "../errors/continuity-error.js";
import type { ConflictPolicy, DeltaEncoding } from "../gen/continuity/v1/types.js";
import { fromHex, toHex } from "../protocol/index.js";
import type { QueueStore } from "../queue/queue-store.js";

/** Where a stream's record lives in the queue store. */
export function recordKey(device: string, stream: string): string {
  return `stream/${device}/${stream}`;
}

/** The stored record of `stream` for `device`, if the store has one. */
export async function readRecord(store: QueueStore, device: string, stream: string): Promise<StreamRecord | undefined> {
  const key = recordKey(device, stream);
  const stored = await store.read(key);
  return stored === undefined ? undefined : decodeRecord(stored, key);
}

/** What the queue store holds for one stream of one device. */
export interface StreamRecord {
  readonly format: 1;
  readonly stream: { name: string; uid: string; type: string; encoding: DeltaEncoding; conflictPolicy: ConflictPolicy };
  readonly confirmed: { version: bigint; headHash: Uint8Array; state: unknown };
  /** Undefined when the device's sequence for this stream is unknown and must be probed. */
  readonly lastAcknowledgedSequence: bigint | undefined;
  readonly pending: readonly {
    id: string;
    payload: Uint8Array;
    request: { clientSequence: bigint; expectedVersion: bigint; payload: Uint8Array } | undefined;
  }[];
}

/**
 * Serialises a record as JSON with bigints as decimal strings and bytes as base64, so the
 * file is readable when someone has to debug a device's queue.
 */
export function encodeRecord(record: StreamRecord): string {
  return JSON.stringify({
    format: record.format,
    stream: record.stream,
    confirmed: { version: record.confirmed.version.toString(), headHash: toHex(record.confirmed.headHash), state: record.confirmed.state },
    lastAcknowledgedSequence: record.lastAcknowledgedSequence?.toString() ?? null,
    pending: record.pending.map((op) => ({
      id: op.id,
      payload: base64(op.payload),
      request:
        op.request === undefined
          ? null
          : {
              clientSequence: op.request.clientSequence.toString(),
              expectedVersion: op.request.expectedVersion.toString(),
              payload: base64(op.request.payload),
            },
    })),
  });
}

interface RawRecord {
  format: number;
  stream: StreamRecord["stream"];
  confirmed: { version: string; headHash: string; state: unknown };
  lastAcknowledgedSequence: string | null;
  pending: { id: string; payload: string; request: { clientSequence: string; expectedVersion: string; payload: string } | null }[];
}

/**
 * Inverse of `encodeRecord`. A record of an unknown format (written by a newer SDK) may hold
 * pending writes this version cannot read: it throws FAILED_PRECONDITION /
 * QUEUE_RECORD_UNSUPPORTED rather than let the handle start over and overwrite them.
 */
export function decodeRecord(text: string, key: string): StreamRecord {
  const raw = JSON.parse(text) as RawRecord;
  if (raw.format !== 1) {
    throw new ContinuityError({
      code: Status.FAILED_PRECONDITION,
      reason: "QUEUE_RECORD_UNSUPPORTED",
      message: `the queue store holds ${key} in format ${String(raw.format)}, which this SDK cannot read; open it with the SDK version that wrote it`,
    });
  }
  return {
    format: 1,
    stream: raw.stream,
    confirmed: { version: BigInt(raw.confirmed.version), headHash: fromHex(raw.confirmed.headHash), state: raw.confirmed.state },
    lastAcknowledgedSequence: raw.lastAcknowledgedSequence === null ? undefined : BigInt(raw.lastAcknowledgedSequence),
    pending: raw.pending.map((op) => ({
      id: op.id,
      payload: fromBase64(op.payload),
      request:
        op.request === null
          ? undefined
          : {
              clientSequence: BigInt(op.request.clientSequence),
              expectedVersion: BigInt(op.request.expectedVersion),
              payload: fromBase64(op.request.payload),
            },
    })),
  };
}

// btoa/atob rather than Buffer, so that records serialize the same way in a browser. Binary
// strings are built in slices to keep `String.fromCharCode`'s argument list bounded.
function base64(bytes: Uint8Array): string {
  let binary = "";
  for (let offset = 0; offset < bytes.length; offset += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(offset, offset + 0x8000));
  }
  return globalThis.btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = globalThis.atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}
