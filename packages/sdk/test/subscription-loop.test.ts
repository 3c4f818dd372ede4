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

const ready = (cursor: string): SubscribeResponse => ({ cursor, event: { $case: "ready", value: { epoch: "e" } } });
// Half of every backoff cap, so delays are predictable: 200 ms · 2^(n-1) after the n-th failure.
const halfJitter = { random: () => 0.5 };

it("backs off when SUBSCRIBER_TOO_SLOW recurs without progress", async () => {
  const { client, requests } = await serve(async function* () {
    fail(Status.RESOURCE_EXHAUSTED, "SUBSCRIBER_TOO_SLOW");
  });
  const handlers = recorder();
  const loop = runSubscription({ client, subject: "subjects/s1", store: createMemoryQueueStore(), cursorKey: "cursor", handlers, backoff: halfJitter });
  await waitFor(() => handlers.retries.length >= 3, "three drops");
  await loop.stop();
  expect(handlers.retries.slice(0, 3)).toEqual([0, 400, 800]);
  expect(requests.length).toBeLessThanOrEqual(4);
});

it("backs off when GRANT_REVOKED recurs right after ready, instead of ending or spinning", async () => {
  const { client } = await serve(async function* () {
    yield ready("c1");
    fail(Status.PERMISSION_DENIED, "GRANT_REVOKED");
  });
  const handlers = recorder();
  const loop = runSubscription({ client, subject: "subjects/s1", store: createMemoryQueueStore(), cursorKey: "cursor", handlers, backoff: halfJitter });
  await waitFor(() => handlers.retries.length >= 3, "three drops");
  await loop.stop();
  expect(handlers.ended).toEqual([]);
  expect(handlers.retries.slice(0, 3)).toEqual([0, 400, 800]);
});

it("resubscribes at once after SUBSCRIBER_TOO_SLOW each time an event was applied since", async () => {
  const { client } = await serve(async function* (_request, call) {
    yield ready(`r${call}`);
    yield created(`c${call}`);
    fail(Status.RESOURCE_EXHAUSTED, "SUBSCRIBER_TOO_SLOW");
  });
  const handlers = recorder();
  const loop = runSubscription({ client, subject: "subjects/s1", store: createMemoryQueueStore(), cursorKey: "cursor", handlers, backoff: halfJitter });
  await waitFor(() => handlers.retries.length >= 3, "three drops");
  await loop.stop();
  expect(handlers.retries.slice(0, 3)).toEqual([0, 0, 0]);
});

it("does not reset the backoff on ready when the server keeps dropping the subscription", async () => {
  const { client } = await serve(async function* () {
    yield ready("c1");
    fail(Status.UNAVAILABLE, "BACKEND_DOWN");
  });
  const handlers = recorder();
  const loop = runSubscription({ client, subject: "subjects/s1", store: createMemoryQueueStore(), cursorKey: "cursor", handlers, backoff: halfJitter });
  await waitFor(() => handlers.retries.length >= 3, "three drops");
  await loop.stop();
  expect(handlers.retries.slice(0, 3)).toEqual([200, 400, 800]);
});

it("resets the backoff once an event was applied", async () => {
  const { client } = await serve(async function* (_request, call) {
    yield ready("c1");
    if (call === 3) yield created("c2");
    fail(Status.UNAVAILABLE, "BACKEND_DOWN");
  });
  const handlers = recorder();
  const loop = runSubscription({ client, subject: "subjects/s1", store: createMemoryQueueStore(), cursorKey: "cursor", handlers, backoff: halfJitter });
  await waitFor(() => handlers.retries.length >= 3, "three drops");
  await loop.stop();
  expect(handlers.retries.slice(0, 3)).toEqual([200, 400, 200]);
});

it("asks for the protocol's default heartbeat when given 0, and refuses an interval outside 1..300", async () => {
  const { client, requests } = await serve(async function* (_request, _call, signal) {
    yield ready("c1");
    await hang(signal);
  });
  const handlers = recorder();
  const loop = runSubscription({ client, subject: "subjects/s1", store: createMemoryQueueStore(), cursorKey: "cursor", handlers, heartbeatSeconds: 0 });
  await waitFor(() => requests.length === 1, "subscribed");
  // A 0 ms watchdog would abort the call and resubscribe at once; give it time to.
  await new Promise((resolve) => setTimeout(resolve, 200));
  await loop.stop();
  expect(requests.map((request) => request.heartbeatSeconds)).toEqual([15]);
  expect(handlers.retries).toEqual([]);
  for (const heartbeatSeconds of [301, -1, 1.5]) {
    expect(() =>
      runSubscription({ client, subject: "subjects/s1", store: createMemoryQueueStore(), cursorKey: "cursor", handlers, heartbeatSeconds }),
    ).toThrow(expect.objectContaining({ code: Status.INVALID_ARGUMENT }));
  }
});

it("stops for good when the server refuses the request as INVALID_ARGUMENT", async () => {
  const { client, requests } = await serve(async function* () {
    fail(Status.INVALID_ARGUMENT, "INVALID_FIELD");
  });
  const handlers = recorder();
  const loop = runSubscription({ client, subject: "subjects/s1", store: createMemoryQueueStore(), cursorKey: "cursor", handlers });
  await waitFor(() => handlers.ended.length === 1, "the loop ends");
  await loop.stop();
  expect(handlers.ended[0]?.code).toBe(Status.INVALID_ARGUMENT);
  expect(requests).toHaveLength(1);
});
