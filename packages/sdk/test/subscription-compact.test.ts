import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createMemoryQueueStore, createReplica, type ContinuityClient } from "../src/index.js";
import { ConflictPolicy, DeltaEncoding } from "../src/gen/continuity/v1/types.js";
import { DeliveryForm, type SubscribeResponse } from "../src/gen/continuity/v1/subscription_service.js";
import { runSubscription, type SubscriptionHandlers, type SubscriptionLoop } from "../src/subscription/subscription.js";
import { deviceClient, startReferenceServer, type RunningServer } from "./support/reference-server.js";
import { waitFor } from "./support/wait.js";

// Compact delivery over a real connection to the reference server: the loop asks for it
// because the server declares it, the handlers get exactly what a full subscription gets,
// and a cursor rebuilt from a compact message resumes exactly after it.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** The client, with every raw Subscribe message it receives recorded before decoding. */
function tapped(client: ContinuityClient): { client: ContinuityClient; raw: SubscribeResponse[] } {
  const raw: SubscribeResponse[] = [];
  const subscriptions = {
    subscribe(...args: Parameters<ContinuityClient["subscriptions"]["subscribe"]>) {
      const call = client.subscriptions.subscribe(...args);
      return (async function* () {
        for await (const message of call) {
          raw.push(message);
          yield message;
        }
      })();
    },
  };
  return { client: Object.assign(Object.create(client) as ContinuityClient, { subscriptions }), raw };
}

function recorder(): SubscriptionHandlers & { events: SubscribeResponse[] } {
  const events: SubscribeResponse[] = [];
  return {
    events,
    onEvent: async (message) => {
      events.push(message);
    },
    onReset: async () => undefined,
    onConnected: () => undefined,
    onEnded: () => undefined,
    onRetry: () => undefined,
  };
}

/** The events without their cursors (the two forms' cursors are different strings for one position). */
const withoutCursors = (events: readonly SubscribeResponse[]) => events.map((message) => message.event);

describe("compact delivery", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startReferenceServer();
  });
  afterAll(async () => {
    await server.dispose();
  });

  const client = (account: string, device: string): ContinuityClient => {
    const made = deviceClient(server.address, server.platformA, account, device);
    cleanups.push(() => made.close());
    return made;
  };
  const loop = (options: Parameters<typeof runSubscription>[0]): SubscriptionLoop => {
    const running = runSubscription(options);
    cleanups.push(() => running.stop());
    return running;
  };

  it("delivers, compact on the wire, the very events a full subscription gets, and resumes exactly", async () => {
    const writer = client("hal", "writer");
    const { subject } = await writer.session();
    expect((await writer.serverInfo.getServerInfo({})).deliveryForms).toContain(DeliveryForm.DELIVERY_FORM_COMPACT);

    const compactTap = tapped(client("hal", "compact"));
    const compact = recorder();
    const compactStore = createMemoryQueueStore();
    let compactLoop = loop({ client: compactTap.client, subject, store: compactStore, cursorKey: "cursor", handlers: compact });
    const fullTap = tapped(client("hal", "full"));
    const full = recorder();
    loop({ client: fullTap.client, subject, store: createMemoryQueueStore(), cursorKey: "cursor", handlers: full, compactDelivery: false });
    await waitFor(() => compactTap.raw.length > 0 && fullTap.raw.length > 0, "both subscriptions are ready");

    const create = (id: string) =>
      writer.streams.createStream({
        parent: subject,
        streamId: id,
        stream: { type: "org.example.compact", encoding: DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
      });
    const sequences = new Map<string, bigint>();
    const append = async (stream: string, values: readonly number[]) => {
      const next = (sequences.get(stream) ?? 0n) + 1n;
      sequences.set(stream, next);
      await writer.streams.appendDeltas({ stream, clientSequence: next, deltas: values.map((value) => ({ payload: new TextEncoder().encode(JSON.stringify({ value })) })) });
    };
    const a = (await create("a")).stream!.name;
    const b = (await create("b")).stream!.name;
    await append(a, [1]);
    await append(b, [1, 2, 3]);
    await append(a, [2]);
    await writer.streams.deleteStream({ name: a });
    const again = (await create("a")).stream!;
    sequences.delete(a);
    await append(a, [3]);
    await waitFor(() => full.events.length === 8 && compact.events.length === 8, "eight events on both subscriptions");

    // What the handlers saw is the full form, field for field.
    expect(withoutCursors(compact.events)).toEqual(withoutCursors(full.events));
    // And it was compact on the wire: batches by index, prev_hash left out where it chains,
    // a new index for the stream created again under the same name.
    expect(compactTap.raw[0]?.event?.$case === "ready" && compactTap.raw[0].event.value.deliveryForm).toBe(DeliveryForm.DELIVERY_FORM_COMPACT);
    expect(fullTap.raw[0]?.event?.$case === "ready" && fullTap.raw[0].event.value.deliveryForm).not.toBe(DeliveryForm.DELIVERY_FORM_COMPACT);
    expect(fullTap.raw.some((m) => m.event?.$case === "compactDeltasAppended" || (m.cursorSuffix?.length ?? 0) > 0)).toBe(false);
    const batches = compactTap.raw.flatMap((m) => (m.event?.$case === "compactDeltasAppended" ? [m.event.value] : []));
    expect(batches.map((batch) => [batch.streamIndex, batch.stream !== "", batch.prevHash.length])).toEqual([
      [1, true, 32],
      [2, true, 32],
      [1, false, 0],
      [3, true, 32],
    ]);
    expect(batches[3]?.streamUid).toBe(again.uid);
    for (const message of compactTap.raw.slice(1)) expect(message.cursor === "" && (message.cursorSuffix?.length ?? 0) > 0).toBe(true);

    // A cursor rebuilt from a compact message resumes exactly after it: stop, write, resume.
    await compactLoop.stop();
    await append(b, [4]);
    await append(again.name, [4]);
    compact.events.length = 0;
    compactLoop = loop({ client: compactTap.client, subject, store: compactStore, cursorKey: "cursor", handlers: compact });
    await waitFor(() => full.events.length === 10 && compact.events.length === 2, "the two new batches");
    expect(withoutCursors(compact.events)).toEqual(withoutCursors(full.events.slice(8)));
  });

  it("keeps replicas verified and in step over a compact subscription", async () => {
    const laptop = await createReplica(client("ida", "laptop"));
    cleanups.push(() => laptop.close());
    const phone = await createReplica(client("ida", "phone"));
    cleanups.push(() => phone.close());
    const onLaptop = await laptop.openStream<{ n?: number }>({ stream: "notes", create: { type: "org.example.notes" } });
    const onPhone = await phone.openStream<{ n?: number }>({ stream: onLaptop.name });
    await phone.whenConnected();
    for (let n = 1; n <= 5; n++) await onLaptop.update({ n });
    await waitFor(() => onPhone.confirmedState.n === 5, "the phone follows every write");
    expect(onPhone.status.confirmedVersion).toBe(onLaptop.status.confirmedVersion);
  });
});
