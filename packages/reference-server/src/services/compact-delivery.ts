import { continuity } from "@continuity/sdk/gen";

/**
 * The compact delivery form of a subscription (subscriptions.md, "Compact delivery"): asked
 * for with `SubscribeRequest.delivery_form`, declared in `ServerInfo.delivery_forms`.
 *
 * A compact subscription names each stream and device once and then by a small index of its
 * own, leaves out the `prev_hash` the client already holds, sends a batch's shared fields
 * (device, client sequence, commit time, batch bounds) once instead of once per delta, and
 * carries each cursor as a binary suffix of a prefix sent once. The full form of a batch
 * (`deltas_appended`) stays legal on a compact subscription, and is what this module falls
 * back to whenever a batch does not fit the compact shape or the index tables are full.
 *
 * Cursors: a compact cursor is the base64url of `prefix ‖ suffix`, with
 * `prefix = 0x03 ‖ u8(len(epoch)) ‖ epoch` and `suffix = varint(sequence) ‖ tag`, the same
 * 16-byte MAC tag as the textual v2 cursor of that position, so both name one position and
 * verify the same way (subscription-service.ts). The epoch stays readable so that a cursor
 * of a wiped store is still answered with reset EPOCH_CHANGED.
 *
 * Hand-written rather than a library: the encoding is this protocol's own, and a varint and
 * a few bytes are all it needs.
 */

const v1 = continuity.v1;
type Message = continuity.v1.SubscribeResponse;
type Delta = continuity.v1.Delta;

const COMPACT_CURSOR_VERSION = 0x03;
const TAG_BYTES = 16;
const MAX_EPOCH_BYTES = 64;
/** Most streams (name and uid) one subscription indexes; later new ones are sent in full. */
export const MAX_INDEXED_STREAMS = 1024;
/** Most devices one subscription indexes; batches of later new ones are sent in full. */
export const MAX_INDEXED_DEVICES = 1024;

/** The forms this server honours besides the full one (ServerInfo.delivery_forms). */
export const DELIVERY_FORMS: readonly continuity.v1.DeliveryForm[] = [v1.DeliveryForm.DELIVERY_FORM_COMPACT];

/** A cursor position as the compact form encodes it (the shape of subscription-service's Cursor). */
export interface CompactCursor {
  readonly epoch: string;
  readonly sequence: number;
  readonly tag: Uint8Array;
}

/** The bytes every compact cursor of `epoch` starts with. */
export function compactCursorPrefix(epoch: string): Buffer {
  // Stryker disable next-line StringLiteral: with "" Buffer.from reads UTF-8, the same bytes for an epoch, which is 32 hex digits (randomUUID in sqlite-store.ts and pg-store.ts)
  const text = Buffer.from(epoch, "ascii");
  return Buffer.concat([Buffer.from([COMPACT_CURSOR_VERSION, text.length]), text]);
}

/** The per-message part of a compact cursor. */
export function compactCursorSuffix(sequence: number, tag: Uint8Array): Buffer {
  const out: number[] = [];
  let rest = sequence;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return Buffer.concat([Buffer.from(out), tag]);
}

/**
 * Parses a compact cursor (the base64url of prefix ‖ suffix); undefined when `text` is not
 * one. Only the canonical encoding parses, so one position has one compact cursor.
 */
export function parseCompactCursor(text: string): CompactCursor | undefined {
  const bytes = Buffer.from(text, "base64url");
  if (bytes.toString("base64url") !== text || bytes.length < 2 || bytes[0] !== COMPACT_CURSOR_VERSION) return undefined;
  const epochLength = bytes[1]!;
  if (epochLength === 0 || epochLength > MAX_EPOCH_BYTES) return undefined;
  const epoch = bytes.subarray(2, 2 + epochLength).toString("latin1");
  if (!/^[A-Za-z0-9]+$/.test(epoch) || epoch.length !== epochLength) return undefined;
  let at = 2 + epochLength;
  let sequence = 0;
  let scale = 1;
  for (;;) {
    const byte = bytes[at++];
    if (byte === undefined) return undefined;
    sequence += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      // A last byte of 0 after others is a longer spelling of a shorter number.
      if (byte === 0 && scale > 1) return undefined;
      break;
    }
    scale *= 0x80;
    if (scale > 2 ** 56) return undefined;
  }
  if (!Number.isSafeInteger(sequence) || bytes.length - at !== TAG_BYTES) return undefined;
  return { epoch, sequence, tag: bytes.subarray(at) };
}

/** Whether a request's `delivery_form` asks for a form this server honours as compact. */
export function wantsCompact(deliveryForm: number | undefined): boolean {
  return deliveryForm === v1.DeliveryForm.DELIVERY_FORM_COMPACT;
}

/**
 * What every subscription of one server shares about compact messages: the rendering of a
 * batch for one combination of indexes is the same object for every subscription that
 * needs it, so it is built (and encoded) once, as the full form is.
 */
export interface CompactShared {
  readonly batches: WeakMap<Message, CompactBatch | null>;
}

export function createCompactShared(): CompactShared {
  return { batches: new WeakMap() };
}

/** A full-form batch message, with what its compact renderings need. */
interface CompactBatch {
  readonly streamKey: string;
  readonly stream: string;
  readonly streamUid: string;
  readonly encoding: continuity.v1.DeltaEncoding;
  readonly device: string;
  readonly prevHash: Uint8Array;
  readonly lastHash: Uint8Array;
  readonly suffix: Buffer | undefined;
  readonly variants: Map<string, Message>;
}

/** How one subscription sends its messages: as they are (full form), or compact. */
export interface CompactDelivery {
  /** The first message (ready or reset), saying the form and the cursor prefix. */
  first(message: Message): Message;
  /** A later message as this subscription sends it. */
  later(message: Message): Message;
}

interface StreamEntry {
  readonly index: number;
  /** The hash of the last delta of this stream delivered on the subscription. */
  lastHash: Uint8Array | undefined;
}

const FULL_FORM: CompactDelivery = { first: (message) => message, later: (message) => message };

/**
 * The delivery of one subscription in the form its request asked for: the full form unless
 * it asked for the compact one (SUB-060), so a client that did not ask never sees it.
 * `cursorOf` recovers the position and tag of a message's textual cursor.
 */
export function createDelivery(
  deliveryForm: number | undefined,
  epoch: string,
  shared: CompactShared,
  cursorOf: (cursor: string) => CompactCursor | undefined,
): CompactDelivery {
  return wantsCompact(deliveryForm) ? createCompactDelivery(epoch, shared, cursorOf) : FULL_FORM;
}

/**
 * The compact delivery of one subscription. A message whose cursor `cursorOf` cannot read
 * keeps its textual `cursor`.
 */
function createCompactDelivery(
  epoch: string,
  shared: CompactShared,
  cursorOf: (cursor: string) => CompactCursor | undefined,
): CompactDelivery {
  const prefix = compactCursorPrefix(epoch);
  const streams = new Map<string, StreamEntry>();
  const devices = new Map<string, number>();

  const suffixOf = (cursor: string): Buffer | undefined => {
    const parsed = cursor === "" ? undefined : cursorOf(cursor);
    return parsed === undefined || parsed.epoch !== epoch ? undefined : compactCursorSuffix(parsed.sequence, parsed.tag);
  };

  const withSuffix = (message: Message, suffix: Buffer | undefined): Message =>
    suffix === undefined ? message : { ...message, cursor: "", cursorSuffix: suffix };

  /** A full-form batch the subscription sends as it is: the stream's chain still moves. */
  const full = (message: Message, batch: CompactBatch | null): Message => {
    if (batch !== null) {
      const entry = streams.get(batch.streamKey);
      if (entry !== undefined) entry.lastHash = batch.lastHash;
    } else if (message.event?.$case === "deltasAppended") {
      for (const delta of message.event.value.deltas) {
        const entry = streams.get(streamKey(delta));
        if (entry !== undefined) entry.lastHash = delta.hash;
      }
    }
    return message;
  };

  return {
    first(message) {
      const event = message.event;
      if (event?.$case === "ready" || event?.$case === "reset") {
        return {
          ...message,
          event: { ...event, value: { ...event.value, deliveryForm: v1.DeliveryForm.DELIVERY_FORM_COMPACT, cursorPrefix: prefix } },
        } as Message;
      }
      return message;
    },
    later(message) {
      if (message.event?.$case !== "deltasAppended") return withSuffix(message, suffixOf(message.cursor));
      let batch = shared.batches.get(message);
      if (batch === undefined) {
        batch = describeBatch(message, suffixOf(message.cursor));
        shared.batches.set(message, batch);
      }
      if (batch === null) return full(message, batch);
      let entry = streams.get(batch.streamKey);
      const defineStream = entry === undefined;
      if (entry === undefined) {
        if (streams.size >= MAX_INDEXED_STREAMS) return full(message, batch);
        entry = { index: streams.size + 1, lastHash: undefined };
      }
      let deviceIndex = batch.device === "" ? 0 : devices.get(batch.device);
      const defineDevice = deviceIndex === undefined;
      if (deviceIndex === undefined) {
        if (devices.size >= MAX_INDEXED_DEVICES) return full(message, batch);
        deviceIndex = devices.size + 1;
        devices.set(batch.device, deviceIndex);
      }
      if (defineStream) streams.set(batch.streamKey, entry);
      const omitPrevHash = entry.lastHash !== undefined && Buffer.compare(entry.lastHash, batch.prevHash) === 0;
      entry.lastHash = batch.lastHash;
      const key = `${entry.index}.${defineStream ? 1 : 0}.${deviceIndex}.${defineDevice ? 1 : 0}.${omitPrevHash ? 1 : 0}`;
      let compact = batch.variants.get(key);
      if (compact === undefined) {
        compact = renderCompact(message, batch, entry.index, defineStream, deviceIndex, defineDevice, omitPrevHash);
        batch.variants.set(key, compact);
      }
      return compact;
    },
  };
}

const streamKey = (delta: Pick<Delta, "stream" | "streamUid">): string => `${delta.stream}\n${delta.streamUid}`;

const sameTime = (a: Date | undefined, b: Date | undefined): boolean => a?.getTime() === b?.getTime();

/**
 * What a full-form batch becomes in the compact form, or null when it does not have the
 * shape the compact form can carry exactly: one stream, device, client sequence and commit
 * time, consecutive versions chained to each other, batch fields naming this very batch.
 */
function describeBatch(message: Message, suffix: Buffer | undefined): CompactBatch | null {
  if (message.event?.$case !== "deltasAppended") return null;
  const deltas = message.event.value.deltas;
  const head = deltas[0];
  if (head === undefined) return null;
  for (let i = 0; i < deltas.length; i++) {
    const delta = deltas[i]!;
    if (
      delta.stream !== head.stream ||
      delta.streamUid !== head.streamUid ||
      delta.encoding !== head.encoding ||
      delta.device !== head.device ||
      delta.clientSequence !== head.clientSequence ||
      !sameTime(delta.commitTime, head.commitTime) ||
      delta.version !== head.version + BigInt(i) ||
      delta.batchFirstVersion !== head.version ||
      delta.batchSize !== deltas.length ||
      (i > 0 && Buffer.compare(delta.prevHash, deltas[i - 1]!.hash) !== 0)
    ) {
      return null;
    }
  }
  return {
    streamKey: streamKey(head),
    stream: head.stream,
    streamUid: head.streamUid,
    encoding: head.encoding,
    device: head.device,
    prevHash: head.prevHash,
    lastHash: deltas[deltas.length - 1]!.hash,
    suffix,
    variants: new Map(),
  };
}

function renderCompact(
  message: Message,
  batch: CompactBatch,
  streamIndex: number,
  defineStream: boolean,
  deviceIndex: number,
  defineDevice: boolean,
  omitPrevHash: boolean,
): Message {
  const deltas = message.event?.$case === "deltasAppended" ? message.event.value.deltas : [];
  const head = deltas[0]!;
  const empty = Buffer.alloc(0);
  return {
    cursor: batch.suffix === undefined ? message.cursor : "",
    cursorSuffix: batch.suffix ?? empty,
    event: {
      $case: "compactDeltasAppended",
      value: {
        streamIndex,
        stream: defineStream ? batch.stream : "",
        streamUid: defineStream ? batch.streamUid : "",
        encoding: defineStream ? batch.encoding : v1.DeltaEncoding.DELTA_ENCODING_UNSPECIFIED,
        deviceIndex,
        device: defineDevice ? batch.device : "",
        firstVersion: head.version,
        clientSequence: head.clientSequence,
        commitTime: head.commitTime,
        prevHash: omitPrevHash ? empty : batch.prevHash,
        deltas: deltas.map((delta) => ({ payload: delta.payload, hash: delta.hash })),
      },
    },
  };
}
