import { afterEach } from "vitest";
import { createAssertionTokenProvider, createContinuityClient, type ContinuityClient } from "../../src/index.js";
import { startFakeStreamServer, type FakeStreamServer } from "../fake-stream-server.js";

/** What a test file that drives stream handles against the in-memory fake server needs. */
export interface FakeStreamTestKit {
  /** Undone in reverse order after each test. */
  readonly cleanups: (() => Promise<void> | void)[];
  /** A fresh fake server, shut down after the test. */
  fake(options?: { subject?: string }): Promise<FakeStreamServer>;
  /** A client for one device: no retries and a short deadline, so failures surface at once. */
  clientFor(server: FakeStreamServer, deviceId: string): ContinuityClient;
}

/** Call at the top of a test file: registers the cleanup hook and returns the kit. */
export function useFakeStreamServer(): FakeStreamTestKit {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return {
    cleanups,
    async fake(options) {
      const server = await startFakeStreamServer(options);
      cleanups.push(() => server.shutdown());
      return server;
    },
    clientFor(server, deviceId) {
      const client = createContinuityClient({
        address: server.address,
        tokenProvider: createAssertionTokenProvider({ deviceId, getAssertion: () => Promise.resolve("assertion") }),
        retry: { maxAttempts: 1 },
        deadlineMs: 2_000,
      });
      cleanups.push(() => client.close());
      return client;
    },
  };
}
