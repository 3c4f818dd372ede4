import { createServer } from "nice-grpc";
import { afterEach, describe, expect, it } from "vitest";
import {
  createContinuityClient,
  createReplica,
  createStaticTokenProvider,
  openStream,
  Status,
  type ContinuityClient,
  type ContinuityError,
} from "../src/index.js";
import { StreamServiceDefinition, type StreamServiceImplementation } from "../src/gen/continuity/v1/stream_service.js";
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

/** A server whose subscriptions and GetStream calls stay open until the client goes; it records when they end. */
async function hangingServer(): Promise<{ address: string; ended: string[] }> {
  const ended: string[] = [];
  const server = createServer();
  const hang = (signal: AbortSignal, what: string): Promise<void> =>
    new Promise((resolve) =>
      signal.addEventListener("abort", () => {
        ended.push(what);
        resolve();
      }),
    );
  server.add(SubscriptionServiceDefinition, {
    async *subscribe(_request, context): AsyncGenerator<SubscribeResponse> {
      yield { cursor: "c1", event: { $case: "ready", value: { epoch: "e" } } };
      await hang(context.signal, "subscribe");
    },
  });
  server.add(StreamServiceDefinition, {
    ...Object.fromEntries(Object.keys(StreamServiceDefinition.methods).map((name) => [name, () => Promise.reject(new Error("not here"))])),
    async getStream(_request: unknown, context: { signal: AbortSignal }) {
      await hang(context.signal, "getStream");
      return {};
    },
  } as unknown as StreamServiceImplementation);
  const port = await server.listen("127.0.0.1:0");
  cleanups.push(() => server.shutdown());
  return { address: `127.0.0.1:${port}`, ended };
}

describe("closing the client", () => {
  it("fails calls in flight and ends the replica's subscription at once", async () => {
    const { address, ended } = await hangingServer();
    const client = createContinuityClient({
      address,
      tokenProvider: createStaticTokenProvider({ token: "t", expiresAt: undefined, subject: "subjects/s1", device: "subjects/s1/devices/laptop" }),
    });
    const replica = await createReplica(client);
    cleanups.push(() => replica.close());
    const endings: ContinuityError[] = [];
    replica.on("ended", (error) => endings.push(error));
    await replica.whenConnected();
    const inFlight = client.streams.getStream({ name: "subjects/s1/streams/a" }, { timeoutMs: 20_000 }).catch((error: unknown) => error);
    await waitFor(() => ended.length === 0 && replica.connected, "the call is in flight");
    await sleep(50);

    const closedAt = Date.now();
    client.close();
    expect(await inFlight).toMatchObject({ code: Status.CANCELLED, reason: "CLIENT_CLOSED" });
    await waitFor(() => endings.length === 1, "the replica's subscription ends", 1_000);
    expect(endings[0]).toMatchObject({ code: Status.CANCELLED, reason: "CLIENT_CLOSED" });
    expect(replica.connected).toBe(false);
    // The server saw both calls end: nothing is left open on the wire.
    await waitFor(() => ended.length === 2, "the server sees both calls end", 1_000);
    expect(ended.sort()).toEqual(["getStream", "subscribe"]);
    expect(Date.now() - closedAt).toBeLessThan(1_000);
    await expect(client.streams.getStream({ name: "subjects/s1/streams/a" })).rejects.toMatchObject({ reason: "CLIENT_CLOSED" });
  });

  it("lets a process whose only work was a replica exit once it closes its client", async () => {
    const { address } = await hangingServer();
    const { spawn } = await import("node:child_process");
    const { fileURLToPath } = await import("node:url");
    const script = fileURLToPath(new URL("./support/closing-client.ts", import.meta.url));
    const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", script, address], { stdio: ["ignore", "pipe", "inherit"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    await waitFor(() => output.includes("CONNECTED"), "the child's replica connects", 15_000);
    const closedAt = Date.now();
    const code = await Promise.race([exited, sleep(5_000).then(() => "still running" as const)]);
    if (code === "still running") child.kill("SIGKILL");
    expect(code).toBe(0);
    expect(Date.now() - closedAt).toBeLessThan(5_000);
    expect(output).toContain("ENDED CLIENT_CLOSED");
  });
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
