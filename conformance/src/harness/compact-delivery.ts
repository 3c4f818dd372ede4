import type { continuity } from "@continuity/sdk/gen";
import { v1 } from "./clients.js";
import { check, fail } from "./expect.js";

type SubscribeResponse = continuity.v1.SubscribeResponse;
type Delta = continuity.v1.Delta;

/**
 * The suite's own reading of the compact delivery form (subscriptions.md, "Compact
 * delivery"), written apart from the SDK's so that one misreading of the spec cannot hide in
 * both. It checks every message of one call against SUB-060 … SUB-065 as it goes and turns
 * each into the full form, which cases then compare with a full subscription of the same feed.
 */
export interface CompactRebuilder {
  /** The message in the full form, with its cursor; fails the case on a broken rule. */
  rebuild(message: SubscribeResponse): SubscribeResponse;
  /** Whether the first message said the call is compact. */
  readonly compact: boolean;
}

/**
 * A rebuilder for one call. `asked`: the request asked for DELIVERY_FORM_COMPACT; `declared`:
 * ServerInfo lists it. Only both together allow (and require) a compact call.
 */
export function createCompactRebuilder(asked: boolean, declared: boolean): CompactRebuilder {
  let seenFirst = false;
  let compact = false;
  let prefix = Buffer.alloc(0);
  const streams = new Map<number, { stream: string; uid: string; encoding: number }>();
  const devices = new Map<number, string>();
  // The hash of the last delta delivered in this call, per stream (name and uid), either form.
  const lastHash = new Map<string, Buffer>();
  const key = (stream: string, uid: string) => `${stream} ${uid}`;

  const rebuildBatch = (value: continuity.v1.CompactDeltasAppended): Delta[] => {
    check(value.streamIndex >= 1, `SUB-062: stream_index must be 1 or more, got ${value.streamIndex}`);
    const known = streams.get(value.streamIndex);
    if (known === undefined) {
      check(value.stream !== "" && value.streamUid !== "", `SUB-062: the first use of stream_index ${value.streamIndex} must define it (stream, stream_uid)`);
      check(value.encoding !== 0, `SUB-062: the first use of stream_index ${value.streamIndex} must say its encoding`);
      streams.set(value.streamIndex, { stream: value.stream, uid: value.streamUid, encoding: value.encoding });
    } else {
      check(
        value.stream === "" && value.streamUid === "" && value.encoding === 0,
        `SUB-062: stream_index ${value.streamIndex} is already defined (${known.stream}, uid ${known.uid}); a later use must not define it again (got ${value.stream || "-"}, uid ${value.streamUid || "-"})`,
      );
    }
    const stream = streams.get(value.streamIndex)!;
    let device = "";
    if (value.deviceIndex === 0) {
      check(value.device === "", "SUB-062: device_index 0 stands for no device and is never defined");
    } else if (devices.has(value.deviceIndex)) {
      check(value.device === "", `SUB-062: device_index ${value.deviceIndex} is already defined; a later use must not define it again`);
      device = devices.get(value.deviceIndex)!;
    } else {
      check(value.device !== "", `SUB-062: the first use of device_index ${value.deviceIndex} must define it`);
      devices.set(value.deviceIndex, value.device);
      device = value.device;
    }
    check(value.deltas.length > 0, "SUB-064: a compact batch holds at least one delta");
    let prev: Buffer;
    if (value.prevHash.length === 0) {
      const held = lastHash.get(key(stream.stream, stream.uid));
      if (held === undefined) fail(`SUB-063: prev_hash left out on a batch of ${stream.stream} (uid ${stream.uid}), whose deltas this call has not delivered before`);
      prev = held;
    } else {
      check(value.prevHash.length === 32, `HASH-001: prev_hash must be 32 bytes, got ${value.prevHash.length}`);
      prev = Buffer.from(value.prevHash);
    }
    const out: Delta[] = value.deltas.map((delta, i) => {
      const rebuilt: Delta = {
        stream: stream.stream,
        streamUid: stream.uid,
        version: value.firstVersion + BigInt(i),
        encoding: stream.encoding,
        payload: delta.payload,
        prevHash: prev,
        hash: delta.hash,
        device,
        clientSequence: value.clientSequence,
        batchFirstVersion: value.firstVersion,
        batchSize: value.deltas.length,
        commitTime: value.commitTime,
      };
      prev = Buffer.from(delta.hash);
      return rebuilt;
    });
    lastHash.set(key(stream.stream, stream.uid), prev);
    return out;
  };

  return {
    get compact() {
      return compact;
    },
    rebuild(message) {
      const event = message.event;
      const suffix = message.cursorSuffix ?? new Uint8Array(0);
      if (!seenFirst) {
        seenFirst = true;
        check(event?.$case === "ready" || event?.$case === "reset", `SUB-001: the first message must be ready or reset, got ${event?.$case ?? "nothing"}`);
        const form = event.value.deliveryForm;
        if (asked && declared) {
          check(form === v1.DeliveryForm.DELIVERY_FORM_COMPACT, `SUB-061: the server lists DELIVERY_FORM_COMPACT and the call asked for it, but ${event.$case} says delivery_form ${form ?? "unset"}`);
          compact = true;
          prefix = Buffer.from(event.value.cursorPrefix ?? new Uint8Array(0));
        } else {
          check(form !== v1.DeliveryForm.DELIVERY_FORM_COMPACT, `SUB-060: ${event.$case} says DELIVERY_FORM_COMPACT to a call that ${asked ? "asked for a form the server does not list" : "did not ask for it"}`);
        }
        check(suffix.length === 0 && message.cursor !== "", "SUB-009: the first message carries its cursor in full");
        return message;
      }
      if (!compact) {
        check(suffix.length === 0, `SUB-060: a ${event?.$case ?? "message"} carries cursor_suffix on a call that is not compact`);
        check(event?.$case !== "compactDeltasAppended", "SUB-060: compact_deltas_appended on a call that is not compact");
        return message;
      }
      check((message.cursor === "") !== (suffix.length === 0), `SUB-065: a message carries exactly one of cursor and cursor_suffix (got cursor ${JSON.stringify(message.cursor)}, ${suffix.length} suffix bytes)`);
      const cursor = message.cursor !== "" ? message.cursor : Buffer.concat([prefix, Buffer.from(suffix)]).toString("base64url");
      if (event?.$case === "compactDeltasAppended") {
        return { cursor, event: { $case: "deltasAppended", value: { deltas: rebuildBatch(event.value) } } };
      }
      if (event?.$case === "deltasAppended") {
        for (const delta of event.value.deltas) lastHash.set(key(delta.stream, delta.streamUid), Buffer.from(delta.hash));
      }
      return { cursor, event };
    },
  };
}

/** Whether the server lists the compact form in ServerInfo.delivery_forms. */
export async function declaresCompact(clients: { serverInfo: { getServerInfo(request: object): Promise<continuity.v1.GetServerInfoResponse> } }): Promise<boolean> {
  const info = await clients.serverInfo.getServerInfo({});
  return info.deliveryForms.includes(v1.DeliveryForm.DELIVERY_FORM_COMPACT);
}
