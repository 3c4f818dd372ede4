import { createServer, Status, type Server } from "nice-grpc";
import { ErrorInfo, errorDetailsServerMiddleware, RichServerError } from "nice-grpc-error-details";
import { afterEach, expect, it } from "vitest";
import { ContinuityError, createContinuityClient, createMemoryQueueStore, createStaticTokenProvider, type ContinuityClient } from "../src/index.js";
import {
  SubscriptionServiceDefinition,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../src/gen/continuity/v1/subscription_service.js";
import { runSubscription, type SubscriptionHandlers } from "../src/subscription/subscription.js";
import { waitFor } from "./support/wait.js";

// The subscription loop's reactions to terminal statuses, against a scripted server: the
// reference server cannot be made to drop a subscriber as too slow on demand.

const open: { server: Server; client: ContinuityClient }[] = [];
afterEach(async () => {
  for (const { server, client } of open.splice(0)) {
    client.close();
    await server.shutdown();
  }
});

type Script = (request: SubscribeRequest, call: number, signal: AbortSignal) => AsyncGenerator<SubscribeResponse>;

async function serve(script: Script): Promise<{ client: ContinuityClient; requests: SubscribeRequest[] }> {
  const requests: SubscribeRequest[] = [];
  const server = createServer().use(errorDetailsServerMiddleware);
  server.add(SubscriptionServiceDefinition, {
    subscribe(request, context) {
      requests.push(request);
      return script(request, requests.length, context.signal);
    },
  });
  const port = await server.listen("127.0.0.1:0");
  const client = createContinuityClient({ address: `127.0.0.1:${port}`, tokenProvider: createStaticTokenProvider("t") });
  open.push({ server, client });
  return { client, requests };
}

function fail(code: Status, reason: string): never {
  throw new RichServerError(code, reason, [ErrorInfo.fromPartial({ reason, domain: "continuity.v1" })]);
}

const created = (cursor: string): SubscribeResponse => ({
  cursor,
  event: { $case: "streamCreated", value: { stream: undefined } },
});

function recorder(): SubscriptionHandlers & { events: string[]; ended: ContinuityError[]; retries: number[] } {
  const events: string[] = [];
  const ended: ContinuityError[] = [];
  const retries: number[] = [];
  return {
    events,
    ended,
    retries,
    onEvent: async (message) => {
      events.push(message.cursor);
    },
    onReset: async (reason) => {
      events.push(`reset:${reason}`);
    },
    onConnected: () => undefined,
    onEnded: (error) => ended.push(error),
    onRetry: (_error, delayMs) => retries.push(delayMs),
  };
}

async function hang(signal: AbortSignal): Promise<void> {
  await new Promise((resolve) => signal.addEventListener("abort", resolve));
}

it("resubscribes at once from the last applied cursor after SUBSCRIBER_TOO_SLOW", async () => {
  const { client, requests } = await serve(async function* (_request, call, signal) {
    if (call === 1) {
      yield { cursor: "c1", event: { $case: "ready", value: { epoch: "e" } } };
      yield created("c2");
      fail(Status.RESOURCE_EXHAUSTED, "SUBSCRIBER_TOO_SLOW");
    }
    yield { cursor: "c2", event: { $case: "ready", value: { epoch: "e" } } };
    yield created("c3");
    await hang(signal);
  });
  const store = createMemoryQueueStore();
  const handlers = recorder();
  const loop = runSubscription({ client, subject: "subjects/s1", store, cursorKey: "cursor", handlers });
  await waitFor(() => handlers.events.includes("c3"), "the second subscription delivers");
  await loop.stop();
  expect(requests.map((request) => request.cursor)).toEqual(["", "c2"]);
  expect(handlers.events).toEqual(["c2", "c3"]);
  expect(handlers.retries).toEqual([0]);
  expect(store.entries.get("cursor")).toBe("c3");
});

it("stops for good on DEVICE_REVOKED", async () => {
  const { client, requests } = await serve(async function* () {
    yield { cursor: "c1", event: { $case: "ready", value: { epoch: "e" } } };
    fail(Status.PERMISSION_DENIED, "DEVICE_REVOKED");
  });
  const handlers = recorder();
  const loop = runSubscription({ client, subject: "subjects/s1", store: createMemoryQueueStore(), cursorKey: "cursor", handlers });
  await waitFor(() => handlers.ended.length === 1, "the loop ends");
  await loop.stop();
  expect(handlers.ended[0]?.reason).toBe("DEVICE_REVOKED");
  expect(requests).toHaveLength(1);
});

it("drops an unusable cursor, re-bases and starts from now on INVALID_CURSOR", async () => {
  const { client, requests } = await serve(async function* (request, _call, signal) {
    if (request.cursor === "garbage") fail(Status.INVALID_ARGUMENT, "INVALID_CURSOR");
    yield { cursor: "c9", event: { $case: "ready", value: { epoch: "e" } } };
    await hang(signal);
  });
  const store = createMemoryQueueStore();
  await store.write("cursor", "garbage");
  const handlers = recorder();
  const loop = runSubscription({ client, subject: "subjects/s1", store, cursorKey: "cursor", handlers });
  await waitFor(() => store.entries.get("cursor") === "c9", "a fresh cursor is stored");
  await loop.stop();
  expect(requests.map((request) => request.cursor)).toEqual(["garbage", ""]);
  expect(handlers.events).toEqual(["reset:INVALID_CURSOR"]);
});

it("applies an event before it stores the event's cursor", async () => {
  let release: () => void = () => undefined;
  const { client } = await serve(async function* (_request, _call, signal) {
    yield { cursor: "c1", event: { $case: "ready", value: { epoch: "e" } } };
    yield created("c2");
    await hang(signal);
  });
  const store = createMemoryQueueStore();
  const handlers = recorder();
  const applying = new Promise<void>((resolve) => (release = resolve));
  let entered = false;
  handlers.onEvent = async () => {
    entered = true;
    await applying;
  };
  const loop = runSubscription({ client, subject: "subjects/s1", store, cursorKey: "cursor", handlers });
  await waitFor(() => entered, "the event is being applied");
  expect(store.entries.get("cursor")).toBe("c1");
  release();
  await waitFor(() => store.entries.get("cursor") === "c2", "the cursor advances once applied");
  await loop.stop();
});
