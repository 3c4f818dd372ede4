import { Status } from "nice-grpc-common";
import { ContinuityError } from "../errors/continuity-error.js";
import type { Delta } from "../gen/continuity/v1/stream_service.js";
import type { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { DeliveryForm, type CompactDeltasAppended, type SubscribeResponse } from "../gen/continuity/v1/subscription_service.js";

/**
 * Turns the messages of one Subscribe call back into the full form (subscriptions.md,
 * "Compact delivery"): a compact batch becomes the `DeltasAppended` the full form would have
 * sent, field for field, and a `cursor_suffix` becomes the cursor to persist. Everything after
 * this — applying deltas, checking their hash chain, storing cursors — sees full messages only,
 * so a compact subscription verifies exactly as a full one does.
 *
 * The decoder trusts nothing it cannot check: an index used before it is defined, defined
 * twice, a compact message on a subscription that did not ask for one, an omitted
 * `prev_hash` with nothing to take it from — each fails the call with INTERNAL /
 * `COMPACT_DELIVERY_INVALID`, and the subscription loop resubscribes from the last cursor.
 */
export interface DeliveryDecoder {
  /** The message in the full form. */
  decode(message: SubscribeResponse): SubscribeResponse;
}

interface StreamEntry {
  readonly stream: string;
  readonly streamUid: string;
  readonly encoding: DeltaEncoding;
  lastHash: Uint8Array | undefined;
}

/** A decoder for one call; `asked` says whether the request asked for the compact form. */
export function createDeliveryDecoder(asked: boolean): DeliveryDecoder {
  let first = true;
  let compact = false;
  let prefix: Uint8Array = new Uint8Array(0);
  const streams = new Map<number, StreamEntry>();
  const streamIndexes = new Map<string, number>();
  const devices = new Map<number, string>();

  const expand = (value: CompactDeltasAppended): Delta[] => {
    let entry = streams.get(value.streamIndex);
    if (value.stream !== "") {
      if (value.streamIndex < 1 || entry !== undefined) throw invalid(`stream index ${value.streamIndex} defined twice, or below 1`);
      entry = { stream: value.stream, streamUid: value.streamUid, encoding: value.encoding, lastHash: undefined };
      streams.set(value.streamIndex, entry);
      streamIndexes.set(keyOf(entry), value.streamIndex);
    } else if (entry === undefined) {
      throw invalid(`stream index ${value.streamIndex} used before it was defined`);
    }
    let device = value.deviceIndex === 0 ? "" : devices.get(value.deviceIndex);
    if (value.device !== "") {
      if (value.deviceIndex < 1 || device !== undefined) throw invalid(`device index ${value.deviceIndex} defined twice, or 0`);
      device = value.device;
      devices.set(value.deviceIndex, device);
    } else if (device === undefined) {
      throw invalid(`device index ${value.deviceIndex} used before it was defined`);
    }
    const prevHash = value.prevHash.length > 0 ? value.prevHash : entry.lastHash;
    if (prevHash === undefined) throw invalid(`prev_hash left out on the first batch of stream index ${value.streamIndex}`);
    if (value.deltas.length === 0) throw invalid("a compact batch without deltas");
    const deltas: Delta[] = [];
    let previous = prevHash;
    for (const [i, delta] of value.deltas.entries()) {
      deltas.push({
        stream: entry.stream,
        streamUid: entry.streamUid,
        version: value.firstVersion + BigInt(i),
        encoding: entry.encoding,
        payload: delta.payload,
        prevHash: previous,
        hash: delta.hash,
        device,
        clientSequence: value.clientSequence,
        batchFirstVersion: value.firstVersion,
        batchSize: value.deltas.length,
        commitTime: value.commitTime,
      });
      previous = delta.hash;
    }
    entry.lastHash = previous;
    return deltas;
  };

  return {
    decode(message) {
      const event = message.event;
      if (first) {
        first = false;
        if (event?.$case === "ready" || event?.$case === "reset") {
          compact = event.value.deliveryForm === DeliveryForm.DELIVERY_FORM_COMPACT;
          if (compact && !asked) throw invalid("the server answered in the compact form, which this call did not ask for");
          prefix = event.value.cursorPrefix ?? prefix;
        }
        return message;
      }
      const suffix = message.cursorSuffix;
      const hasSuffix = suffix !== undefined && suffix.length > 0;
      if ((hasSuffix || event?.$case === "compactDeltasAppended") && !compact) {
        throw invalid("a compact message on a subscription that is not compact");
      }
      const cursor = message.cursor === "" && hasSuffix ? base64url(prefix, suffix) : message.cursor;
      if (event?.$case === "compactDeltasAppended") {
        return { cursor, event: { $case: "deltasAppended", value: { deltas: expand(event.value) } } };
      }
      if (event?.$case === "deltasAppended" && compact) {
        // A full batch on a compact subscription still moves its stream's chain.
        for (const delta of event.value.deltas) {
          const index = streamIndexes.get(keyOf(delta));
          const entry = index === undefined ? undefined : streams.get(index);
          if (entry !== undefined) entry.lastHash = delta.hash;
        }
      }
      return cursor === message.cursor && !hasSuffix ? message : { cursor, event };
    },
  };
}

const keyOf = (stream: { readonly stream: string; readonly streamUid: string }): string => `${stream.stream}\n${stream.streamUid}`;

function invalid(what: string): ContinuityError {
  return new ContinuityError({ code: Status.INTERNAL, reason: "COMPACT_DELIVERY_INVALID", message: `The subscription's compact delivery is broken: ${what}` });
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** base64url (RFC 4648 §5) without padding of `a ‖ b`; the SDK runs in browsers too, so no Node buffers here. */
function base64url(a: Uint8Array, b: Uint8Array): string {
  const bytes = new Uint8Array(a.length + b.length);
  bytes.set(a, 0);
  bytes.set(b, a.length);
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}
