import { createServer } from "nice-grpc";
import { afterEach, expect, it } from "vitest";
import {
  createContinuityClient,
  createReplica,
  createStaticTokenProvider,
  openStream,
  Status,
  type ContinuityClient,
} from "../src/index.js";
import { SubscriptionServiceDefinition, type SubscribeResponse } from "../src/gen/continuity/v1/subscription_service.js";
import { deviceClient, startReferenceServer } from "./support/reference-server.js";
import { waitFor } from "./support/wait.js";

// How a replica hands pushed events to streams it is still opening, and what closing it
// tells those waiting for a connection.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

it("delivers events pushed while a stream is being opened through the replica", async () => {
  const server = await startReferenceServer();
  cleanups.push(() => server.dispose());
  const phoneClient = deviceClient(server.address, server.platformA, "ana", "phone");
  const laptopClient = deviceClient(server.address, server.platformA, "ana", "laptop");
  cleanups.push(() => phoneClient.close(), () => laptopClient.close());
  const writer = await openStream<{ n: number }>(phoneClient, {
    stream: "notes",
    create: { type: "org.example.notes", encoding: "json-merge-patch" },
  });
  cleanups.push(() => writer.close());
  await writer.update({ n: 1 });
  await writer.settled();
  const laptop = await createReplica(laptopClient);
  cleanups.push(() => laptop.close());
  await laptop.whenConnected();

  // The handle's start-up catch-up answers with version 1; version 2 is written (and pushed
  // to the laptop's subscription) before that answer reaches the handle.
  const listDeltas = laptopClient.streams.listDeltas.bind(laptopClient.streams);
  let first = true;
  (laptopClient.streams as { listDeltas: typeof listDeltas }).listDeltas = async (...args) => {
    const response = await listDeltas(...args);
    if (first) {
      first = false;
      await writer.update({ n: 2 });
      await writer.settled();
      await sleep(300);
    }
    return response;
  };
  const handle = await laptop.openStream<{ n: number }>({ stream: "notes" });
  cleanups.push(() => handle.close());
  await waitFor(() => handle.status.confirmedVersion === 2n, "the pushed version reaches the handle", 3_000);
  expect(handle.state).toEqual({ n: 2 });
});

async function silentServer(sendReady: boolean): Promise<ContinuityClient> {
  const server = createServer();
  server.add(SubscriptionServiceDefinition, {
    async *subscribe(_request, context): AsyncGenerator<SubscribeResponse> {
      if (sendReady) yield { cursor: "c1", event: { $case: "ready", value: { epoch: "e" } } };
      await new Promise((resolve) => context.signal.addEventListener("abort", resolve));
    },
  });
  const port = await server.listen("127.0.0.1:0");
  const client = createContinuityClient({
    address: `127.0.0.1:${port}`,
    tokenProvider: createStaticTokenProvider({ token: "t", expiresAt: undefined, subject: "subjects/s1", device: "subjects/s1/devices/laptop" }),
  });
  cleanups.push(async () => {
    client.close();
    await server.shutdown();
  });
  return client;
}

it("rejects pending whenConnected() callers when the replica closes", async () => {
  const replica = await createReplica(await silentServer(false));
  const waiting = replica.whenConnected().catch((error: unknown) => error);
  await replica.close();
  expect(await waiting).toMatchObject({ code: Status.CANCELLED });
  await expect(replica.whenConnected()).rejects.toMatchObject({ code: Status.CANCELLED });
});

it("reports itself disconnected once closed", async () => {
  const replica = await createReplica(await silentServer(true));
  await replica.whenConnected();
  const changes: boolean[] = [];
  replica.on("connection", ({ connected }) => changes.push(connected));
  await replica.close();
  expect(replica.connected).toBe(false);
  expect(changes).toEqual([false]);
});
