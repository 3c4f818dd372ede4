import { describe, expect, it } from "vitest";
import { DeliveryForm, type CompactDeltasAppended, type SubscribeResponse } from "../gen/continuity/v1/subscription_service.js";
import { DeltaEncoding } from "../gen/continuity/v1/types.js";
import { createDeliveryDecoder } from "./compact-delivery.js";

// The decoder's refusals: what a server breaking the compact form's rules would send. The
// form itself, over a real connection to the reference server, is in test/subscription-compact.test.ts.

const ready = (deliveryForm?: DeliveryForm): SubscribeResponse => ({
  cursor: "c0",
  event: { $case: "ready", value: { epoch: "e", ...(deliveryForm === undefined ? {} : { deliveryForm, cursorPrefix: new Uint8Array([1, 2]) }) } },
});
const hash = (n: number) => new Uint8Array(32).fill(n);
const batch = (value: Partial<CompactDeltasAppended>): SubscribeResponse => ({
  cursor: "",
  cursorSuffix: new Uint8Array([3]),
  event: {
    $case: "compactDeltasAppended",
    value: {
      streamIndex: 1,
      stream: "",
      streamUid: "",
      encoding: DeltaEncoding.DELTA_ENCODING_UNSPECIFIED,
      deviceIndex: 0,
      device: "",
      firstVersion: 1n,
      clientSequence: 1n,
      commitTime: undefined,
      prevHash: new Uint8Array(0),
      deltas: [{ payload: new Uint8Array([0x7b, 0x7d]), hash: hash(1) }],
      ...value,
    },
  },
});
const define = { stream: "subjects/s/streams/a", streamUid: "u", encoding: DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH };

describe("the compact delivery decoder", () => {
  it("rebuilds the cursor from prefix and suffix, and the batch's prev_hash from the one before", () => {
    const decoder = createDeliveryDecoder(true);
    decoder.decode(ready(DeliveryForm.DELIVERY_FORM_COMPACT));
    const first = decoder.decode(batch({ ...define, prevHash: hash(0) }));
    expect(first.cursor).toBe("AQID");
    const second = decoder.decode(batch({ firstVersion: 2n, deltas: [{ payload: new Uint8Array([1]), hash: hash(2) }] }));
    expect(second.event?.$case === "deltasAppended" && second.event.value.deltas[0]?.prevHash).toEqual(hash(1));
  });

  it("refuses what breaks the rules: compact unasked, an index undefined or defined twice, a prev_hash it cannot take", () => {
    const refuses = (asked: boolean, first: SubscribeResponse, ...later: SubscribeResponse[]) => {
      const decoder = createDeliveryDecoder(asked);
      try {
        for (const message of [first, ...later]) decoder.decode(message);
      } catch (error) {
        return (error as { reason?: string }).reason;
      }
      return "accepted";
    };
    expect(refuses(false, ready(DeliveryForm.DELIVERY_FORM_COMPACT))).toBe("COMPACT_DELIVERY_INVALID");
    expect(refuses(false, ready(), batch({ ...define, prevHash: hash(0) }))).toBe("COMPACT_DELIVERY_INVALID");
    expect(refuses(true, ready(), { cursor: "", cursorSuffix: new Uint8Array([1]), event: { $case: "heartbeat", value: { serverTime: undefined } } })).toBe("COMPACT_DELIVERY_INVALID");
    const compact = ready(DeliveryForm.DELIVERY_FORM_COMPACT);
    expect(refuses(true, compact, batch({ prevHash: hash(0) }))).toBe("COMPACT_DELIVERY_INVALID");
    expect(refuses(true, compact, batch({ ...define, prevHash: hash(0) }), batch({ ...define, firstVersion: 2n, prevHash: hash(1) }))).toBe("COMPACT_DELIVERY_INVALID");
    expect(refuses(true, compact, batch({ ...define }))).toBe("COMPACT_DELIVERY_INVALID");
    expect(refuses(true, compact, batch({ ...define, prevHash: hash(0), deviceIndex: 2 }))).toBe("COMPACT_DELIVERY_INVALID");
    expect(refuses(true, compact, batch({ ...define, prevHash: hash(0) }))).toBe("accepted");
  });
});
