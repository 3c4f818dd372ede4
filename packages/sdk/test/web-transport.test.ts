import { afterEach, expect, it } from "vitest";
import * as browser from "../src/browser.js";
import { createReplica, hasReason, openStream, Status, type ContinuityClient, type ContinuityError } from "../src/index.js";
import type { PlatformBackend } from "../examples/support/platform-backend.js";
import { deviceClient, startReferenceServer } from "./support/reference-server.js";
import { waitFor } from "./support/wait.js";

// The browser entry's client — gRPC-web over fetch — against the reference server's gRPC-web
// port, next to a Node client on its gRPC port: the same subject, seen from both.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function webClient(address: string, platform: PlatformBackend, accountId: string, deviceId: string): ContinuityClient {
  return browser.createContinuityClient({
    address: `http://${address}`,
    tokenProvider: browser.createAssertionTokenProvider({ deviceId, getAssertion: () => platform.assert(accountId) }),
    deadlineMs: 5_000,
    retry: { baseDelayMs: 20, maxDelayMs: 200 },
  });
}

it("a browser client writes, subscribes and reads errors over gRPC-web, in step with a gRPC client", async () => {
  const server = await startReferenceServer({ grpcWeb: {} });
  cleanups.push(() => server.dispose());
  expect(server.grpcWebAddress).toMatch(/^127\.0\.0\.1:\d+$/);
  const phone = webClient(server.grpcWebAddress!, server.platformA, "ana", "phone");
  const laptop = deviceClient(server.address, server.platformA, "ana", "laptop");
  cleanups.push(() => phone.close(), () => laptop.close());

  const replica = await createReplica(phone);
  cleanups.push(() => replica.close());
  await replica.whenConnected();
  const onPhone = await replica.openStream<{ lesson?: number; note?: string }>({
    stream: "course-42",
    create: { type: "org.example.course-progress", encoding: "json-merge-patch" },
  });
  cleanups.push(() => onPhone.close());
  await onPhone.update({ lesson: 3 });
  await onPhone.settled();

  const onLaptop = await openStream<{ lesson?: number; note?: string }>(laptop, { stream: "course-42" });
  cleanups.push(() => onLaptop.close());
  expect(onLaptop.state).toEqual({ lesson: 3 });
  await onLaptop.update({ note: "from the laptop" });
  await onLaptop.settled();
  // Pushed through the phone's Subscribe, a server-streaming call over gRPC-web.
  await waitFor(() => onPhone.state.note === "from the laptop", "the laptop's write reaches the phone's subscription", 5_000);
  expect(onPhone.status.confirmedVersion).toBe(2n);

  const error = await phone.streams.getStream({ name: `${replica.subject}/streams/missing` }).catch((caught: unknown) => caught as ContinuityError);
  expect(error).toMatchObject({ code: Status.NOT_FOUND });
  expect(hasReason(error, "STREAM_NOT_FOUND")).toBe(true);
});

it("closing a browser client ends its subscription at once", async () => {
  const server = await startReferenceServer({ grpcWeb: {} });
  cleanups.push(() => server.dispose());
  const phone = webClient(server.grpcWebAddress!, server.platformA, "ana", "phone");
  const replica = await createReplica(phone);
  await replica.whenConnected();
  const started = Date.now();
  phone.close();
  await replica.close();
  expect(Date.now() - started).toBeLessThan(2_000);
  expect(replica.connected).toBe(false);
});
