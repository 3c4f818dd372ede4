/**
 * SUB-034 (issue 10 defect 2): a subscriber that stops reading was never cut. The call stayed
 * open, pinning its buffer, until the client read again.
 */
import * as grpc from "@grpc/grpc-js";
import { afterEach, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { ErrorInfo } from "nice-grpc-error-details";
import { Status as RpcStatus } from "nice-grpc-error-details/lib/proto/google/rpc/status.js";
import { startTestServer, type TestServer } from "../../src/testing/harness.js";

const v1 = continuity.v1;
const STALL_MS = 500;

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

it("ends a subscription whose client stops reading within the stall time, releases it, and tells the client SUBSCRIBER_TOO_SLOW", async () => {
  server = await startTestServer({ maintenanceIntervalMs: 0, subscriptions: { stallTimeoutMs: STALL_MS } });
  const ana = await server.signIn("course-a", "ana");
  const { stream } = await ana.clients.stream.createStream({
    parent: ana.subject,
    streamId: "big",
    stream: { type: "org.example.blob", encoding: v1.DeltaEncoding.DELTA_ENCODING_OPAQUE, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });

  const raw = new grpc.Client(server.address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${ana.token}`);
  const call = raw.makeServerStreamRequest(
    "/continuity.v1.SubscriptionService/Subscribe",
    (request: continuity.v1.SubscribeRequest) => Buffer.from(v1.SubscribeRequest.encode(request).finish()),
    (bytes: Buffer) => v1.SubscribeResponse.decode(bytes),
    { parent: ana.subject, cursor: "", heartbeatSeconds: 0 },
    metadata,
  );
  const received: continuity.v1.SubscribeResponse[] = [];
  const ended = new Promise<grpc.ServiceError | "ok">((resolve) => {
    call.on("error", resolve);
    call.on("end", () => resolve("ok"));
  });
  await new Promise<void>((resolve) => {
    call.on("data", (message: continuity.v1.SubscribeResponse) => {
      received.push(message);
      if (received.length === 1) {
        // The client stops reading right after `ready`.
        call.pause();
        resolve();
      }
    });
  });
  expect(server.server.deps.events.size).toBe(1);

  // Far below the buffer's bounds (1000 events, 32 MiB) but far above what HTTP/2 flow
  // control lets through to a client that does not read.
  const payload = Buffer.alloc(64 * 1024, 1);
  for (let i = 1; i <= 40; i++) {
    await ana.clients.stream.appendDeltas({ stream: stream!.name, clientSequence: BigInt(i), deltas: [{ payload }] });
  }
  const appended = performance.now();
  // The server ends the call and releases the subscription while the client is still paused.
  await expect.poll(() => server!.server.deps.events.size, { timeout: STALL_MS * 6, interval: 50 }).toBe(0);
  expect(performance.now() - appended).toBeLessThan(STALL_MS * 6);

  call.resume();
  const outcome = await ended;
  raw.close();
  expect(outcome).not.toBe("ok");
  const error = outcome as grpc.ServiceError;
  expect(error.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  const details = error.metadata.get("grpc-status-details-bin")[0] as Buffer;
  const info = RpcStatus.decode(details).details.map((any) => ErrorInfo.decode(any.value));
  expect(info[0]?.reason).toBe("SUBSCRIBER_TOO_SLOW");
  // What reached the client is a prefix of the feed: ready, then events in order.
  expect(received[0]?.event?.$case).toBe("ready");
  expect(received.length).toBeLessThan(41);
});
