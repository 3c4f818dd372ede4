import { createServer, ServerError, Status, type CallContext, type Server } from "nice-grpc";
import { BadRequest, ErrorInfo, errorDetailsServerMiddleware, RichServerError } from "nice-grpc-error-details";
import { afterEach, describe, expect, it } from "vitest";
import {
  ContinuityError,
  createAssertionTokenProvider,
  createContinuityClient,
  createStaticTokenProvider,
  type ContinuityClient,
  type ContinuityClientOptions,
} from "../src/index.js";
import { StreamServiceDefinition, type StreamServiceImplementation } from "../src/gen/continuity/v1/stream_service.js";
import { SubscriptionServiceDefinition } from "../src/gen/continuity/v1/subscription_service.js";
import { TokenServiceDefinition, type ExchangeTokenRequest } from "../src/gen/continuity/v1/token_service.js";

// These tests run a real nice-grpc server on loopback whose handlers misbehave on purpose
// (hang, fail, expire tokens), which the reference server cannot be made to do on demand.

interface Harness {
  client: ContinuityClient;
  server: Server;
  exchanges: ExchangeTokenRequest[];
  seen: { path: string; authorization: string | undefined; version: string | undefined }[];
}

const open: Harness[] = [];

afterEach(async () => {
  for (const harness of open.splice(0)) {
    harness.client.close();
    await harness.server.shutdown();
  }
});

function errorInfo(reason: string, metadata: Record<string, string> = {}): ErrorInfo {
  return ErrorInfo.fromPartial({ reason, domain: "continuity.v1", metadata });
}

async function start(
  streams: Partial<StreamServiceImplementation>,
  clientOptions: Partial<ContinuityClientOptions> = {},
  expiresIn = 900,
): Promise<Harness> {
  const exchanges: ExchangeTokenRequest[] = [];
  const seen: Harness["seen"] = [];
  const server = createServer()
    .use(errorDetailsServerMiddleware)
    .use(async function* record(call, context) {
      seen.push({
        path: call.method.path,
        authorization: context.metadata.get("authorization"),
        version: context.metadata.get("continuity-protocol-version"),
      });
      return yield* call.next(call.request, context);
    });
  server.add(TokenServiceDefinition, {
    async exchangeToken(request: ExchangeTokenRequest) {
      exchanges.push(request);
      return {
        accessToken: `token-${exchanges.length}`,
        expiresIn,
        subject: "subjects/s1",
        platform: "platforms/demo-a",
        device: request.deviceId === "" ? "" : `subjects/s1/devices/${request.deviceId}`,
        scope: "state.read state.write",
      };
    },
  });
  server.add(StreamServiceDefinition, completeImplementation(streams));
  server.add(SubscriptionServiceDefinition, {
    async *subscribe(_request, context: CallContext) {
      // Outlives the client's default deadline on purpose.
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (!context.signal.aborted) yield { cursor: "c1", event: { $case: "ready", value: { epoch: "e1" } } };
    },
  });
  const port = await server.listen("127.0.0.1:0");
  const client = createContinuityClient({
    address: `127.0.0.1:${port}`,
    tokenProvider: createAssertionTokenProvider({ deviceId: "laptop", getAssertion: () => Promise.resolve("assertion") }),
    retry: { baseDelayMs: 1, maxDelayMs: 5 },
    ...clientOptions,
  });
  const harness = { client, server, exchanges, seen };
  open.push(harness);
  return harness;
}

/** nice-grpc wants every method; the ones a test does not define answer UNIMPLEMENTED. */
function completeImplementation(partial: Partial<StreamServiceImplementation>): StreamServiceImplementation {
  const unimplemented = () => {
    throw new ServerError(Status.UNIMPLEMENTED, "not in this test");
  };
  const methods = Object.fromEntries(Object.keys(StreamServiceDefinition.methods).map((name) => [name, unimplemented]));
  return { ...methods, ...partial } as StreamServiceImplementation;
}

const stream = { name: "subjects/s1/streams/a", uid: "u", type: "org.example.t" };

describe("ContinuityError.from", () => {
  it("keeps reasons only from the continuity.v1 domain and maps aborts and strangers", () => {
    const abort = new Error("aborted");
    abort.name = "AbortError";
    expect(ContinuityError.from(abort)).toMatchObject({ code: Status.CANCELLED, cause: abort });
    const stranger = new TypeError("boom");
    expect(ContinuityError.from(stranger)).toMatchObject({ code: Status.UNKNOWN, message: "boom", cause: stranger });
    const own = new ContinuityError({ code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" });
    expect(ContinuityError.from(own)).toBe(own);
    expect(String(own)).toBe("NOT_FOUND STREAM_NOT_FOUND: NOT_FOUND");
  });

  it("ignores ErrorInfo from another domain", async () => {
    const harness = await start({
      getStream: () => {
        throw new RichServerError(Status.UNAVAILABLE, "proxy", [ErrorInfo.fromPartial({ reason: "UPSTREAM", domain: "proxy.example" })]);
      },
    }, { retry: { maxAttempts: 1 } });
    const failure = await harness.client.streams.getStream({ name: stream.name }).then(
      () => ContinuityError.from("no error"),
      (error: unknown) => ContinuityError.from(error),
    );
    expect(failure.code).toBe(Status.UNAVAILABLE);
    expect(failure.reason).toBeUndefined();
    expect(failure.details).toHaveLength(1);
  });
});

describe("createContinuityClient", () => {
  it("exchanges the assertion once and sends the bearer token and protocol version on every call", async () => {
    const harness = await start({ getStream: () => Promise.resolve({ stream }) });
    await harness.client.streams.getStream({ name: stream.name });
    await harness.client.streams.getStream({ name: stream.name });
    expect(harness.exchanges).toHaveLength(1);
    expect(harness.exchanges[0]).toMatchObject({
      grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
      subjectToken: "assertion",
      subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
      deviceId: "laptop",
    });
    const exchange = harness.seen.find((call) => call.path.endsWith("/ExchangeToken"));
    expect(exchange?.authorization).toBeUndefined();
    const reads = harness.seen.filter((call) => call.path.endsWith("/GetStream"));
    expect(reads.map((call) => [call.authorization, call.version])).toEqual([
      ["Bearer token-1", "1"],
      ["Bearer token-1", "1"],
    ]);
    expect(await harness.client.session()).toEqual({
      subject: "subjects/s1",
      platform: "platforms/demo-a",
      device: "subjects/s1/devices/laptop",
      deviceId: "laptop",
    });
  });

  it("shares one token exchange between concurrent calls", async () => {
    const harness = await start({ getStream: () => Promise.resolve({ stream }) });
    await Promise.all(Array.from({ length: 5 }, () => harness.client.streams.getStream({ name: stream.name })));
    expect(harness.exchanges).toHaveLength(1);
  });

  it("never repeats a server stream that already delivered a message", async () => {
    let attempts = 0;
    const harness = await start({
      async *getSnapshot() {
        attempts += 1;
        yield { part: { $case: "data" as const, value: Buffer.from("partial") } };
        throw new ServerError(Status.UNAVAILABLE, "dropped mid-stream");
      },
    });
    const received: unknown[] = [];
    const failure = await (async () => {
      for await (const message of harness.client.streams.getSnapshot({ stream: stream.name })) received.push(message);
    })().catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: Status.UNAVAILABLE });
    expect(received).toHaveLength(1);
    expect(attempts).toBe(1);
  });

  it("refreshes the token and repeats the call once when the server says TOKEN_EXPIRED", async () => {
    const harness = await start({
      getStream: (_request, context) => {
        if (context.metadata.get("authorization") === "Bearer token-1") {
          throw new RichServerError(Status.UNAUTHENTICATED, "expired", [errorInfo("TOKEN_EXPIRED")]);
        }
        return Promise.resolve({ stream });
      },
    });
    const response = await harness.client.streams.getStream({ name: stream.name });
    expect(response.stream?.name).toBe(stream.name);
    expect(harness.exchanges).toHaveLength(2);
  });

  it("gives up after one refresh when the new token is refused too", async () => {
    const harness = await start({
      getStream: () => {
        throw new RichServerError(Status.UNAUTHENTICATED, "expired", [errorInfo("TOKEN_EXPIRED")]);
      },
    });
    const failure = await harness.client.streams.getStream({ name: stream.name }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ContinuityError);
    expect(failure).toMatchObject({ code: Status.UNAUTHENTICATED, reason: "TOKEN_EXPIRED" });
    expect(harness.exchanges).toHaveLength(2);
  });

  it("refreshes proactively shortly before the token expires", async () => {
    let clock = 1_000_000;
    const tokenProvider = createAssertionTokenProvider({ getAssertion: () => Promise.resolve("assertion"), now: () => clock });
    const harness = await start({ getStream: () => Promise.resolve({ stream }) }, { tokenProvider }, 900);
    await harness.client.streams.getStream({ name: stream.name });
    clock += 830_000; // 70 s left: outside the default 60 s margin
    await harness.client.streams.getStream({ name: stream.name });
    expect(harness.exchanges).toHaveLength(1);
    clock += 20_000; // 50 s left: inside it
    await harness.client.streams.getStream({ name: stream.name });
    expect(harness.exchanges).toHaveLength(2);
  });

  it("reuses a token that lives shorter than the refresh margin for half its lifetime", async () => {
    let clock = 1_000_000;
    const tokenProvider = createAssertionTokenProvider({ getAssertion: () => Promise.resolve("assertion"), now: () => clock });
    const harness = await start({ getStream: () => Promise.resolve({ stream }) }, { tokenProvider }, 30);
    await harness.client.streams.getStream({ name: stream.name });
    clock += 10_000;
    await harness.client.streams.getStream({ name: stream.name });
    expect(harness.exchanges).toHaveLength(1);
    clock += 6_000; // 14 s of 30 left: past half its lifetime
    await harness.client.streams.getStream({ name: stream.name });
    expect(harness.exchanges).toHaveLength(2);
  });

  it("turns status details into ContinuityError reason, metadata and field violations", async () => {
    const harness = await start({
      appendDeltas: () => {
        throw new RichServerError(Status.INVALID_ARGUMENT, "bad", [
          errorInfo("INVALID_FIELD"),
          BadRequest.fromPartial({ fieldViolations: [{ field: "deltas[0].payload", description: "empty" }] }),
        ]);
      },
      listDeltas: () => {
        throw new RichServerError(Status.ABORTED, "stale", [errorInfo("VERSION_CONFLICT", { headVersion: "7", headHash: "ab" })]);
      },
    });
    const invalid = await harness.client.streams
      .appendDeltas({ stream: stream.name, deltas: [], clientSequence: 1n })
      .then(() => ContinuityError.from("no error"), (error: unknown) => ContinuityError.from(error));
    expect(invalid.reason).toBe("INVALID_FIELD");
    expect(invalid.fieldViolations).toEqual([{ field: "deltas[0].payload", description: "empty" }]);
    const conflict = await harness.client.streams
      .listDeltas({ stream: stream.name })
      .catch((error: unknown) => ContinuityError.from(error));
    expect(conflict).toMatchObject({ code: Status.ABORTED, reason: "VERSION_CONFLICT", metadata: { headVersion: "7", headHash: "ab" } });
  });

  it("retries safe calls on UNAVAILABLE with backoff, and never retries unsafe ones", async () => {
    let reads = 0;
    let creates = 0;
    const harness = await start({
      getStream: () => {
        reads += 1;
        if (reads < 3) throw new ServerError(Status.UNAVAILABLE, "try again");
        return Promise.resolve({ stream });
      },
      createStream: () => {
        creates += 1;
        throw new ServerError(Status.UNAVAILABLE, "try again");
      },
    });
    await harness.client.streams.getStream({ name: stream.name });
    expect(reads).toBe(3);
    const failure = await harness.client.streams.createStream({ parent: "subjects/s1" }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: Status.UNAVAILABLE });
    expect(creates).toBe(1);
  });

  it("puts a default deadline on calls and retries reads that exceed it", async () => {
    let attempts = 0;
    const harness = await start(
      {
        getStream: async (_request, context) => {
          attempts += 1;
          await new Promise((resolve) => {
            const timer = setTimeout(resolve, 5_000);
            context.signal.addEventListener("abort", () => {
              clearTimeout(timer);
              resolve(undefined);
            });
          });
          return { stream };
        },
      },
      { deadlineMs: 100, retry: { maxAttempts: 2, baseDelayMs: 1 } },
    );
    const failure = await harness.client.streams.getStream({ name: stream.name }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ContinuityError);
    expect(failure).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    expect(attempts).toBe(2);
  });

  it("cancels a call when its signal aborts", async () => {
    const harness = await start({
      getStream: (_request, context) =>
        new Promise((resolve) => {
          context.signal.addEventListener("abort", () => resolve({ stream }));
        }),
    });
    const controller = new AbortController();
    const pending = harness.client.streams.getStream({ name: stream.name }, { signal: controller.signal }).catch((error: unknown) => error);
    setTimeout(() => controller.abort(), 50);
    expect(await pending).toMatchObject({ code: Status.CANCELLED });
  });

  it("cancels a subscription when its signal aborts", async () => {
    const harness = await start({});
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const failure = await (async () => {
      for await (const message of harness.client.subscriptions.subscribe({ parent: "subjects/s1" }, { signal: controller.signal })) {
        void message;
      }
    })().catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: Status.CANCELLED });
  });

  it("ends a server stream that outlives its deadline with DEADLINE_EXCEEDED", async () => {
    const harness = await start(
      {
        async *getSnapshot(_request, context) {
          yield { part: { $case: "data" as const, value: Buffer.from("first") } };
          await new Promise((resolve) => context.signal.addEventListener("abort", resolve));
        },
      },
      { deadlineMs: 100 },
    );
    const failure = await (async () => {
      for await (const message of harness.client.streams.getSnapshot({ stream: stream.name })) void message;
    })().catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
  });

  it("gives subscriptions no default deadline", async () => {
    const harness = await start({}, { deadlineMs: 100 });
    const messages = [];
    for await (const message of harness.client.subscriptions.subscribe({ parent: "subjects/s1" })) messages.push(message);
    expect(messages.map((message) => message.event?.$case)).toEqual(["ready"]);
  });

  it("says so when a static token cannot tell the subject", async () => {
    const harness = await start({ getStream: () => Promise.resolve({ stream }) }, { tokenProvider: createStaticTokenProvider("t") });
    await harness.client.streams.getStream({ name: stream.name });
    expect(harness.seen.at(-1)?.authorization).toBe("Bearer t");
    await expect(harness.client.session()).rejects.toMatchObject({ code: Status.FAILED_PRECONDITION });
  });

  it("recovers from a token exchange whose assertion never settles", async () => {
    let assertions = 0;
    const tokenProvider = createAssertionTokenProvider({
      // The first assertion hangs and ignores its signal, like a stuck fetch in app code.
      getAssertion: () => (++assertions === 1 ? new Promise<string>(() => undefined) : Promise.resolve("assertion")),
    });
    const harness = await start({ getStream: () => Promise.resolve({ stream }) }, { tokenProvider, deadlineMs: 150, retry: { maxAttempts: 1 } });
    await expect(harness.client.streams.getStream({ name: stream.name })).rejects.toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    // The hung exchange is abandoned at its own deadline, at the latest shortly after the call's.
    let recovered = false;
    for (let attempt = 0; attempt < 50 && !recovered; attempt += 1) {
      recovered = await harness.client.streams.getStream({ name: stream.name }).then(() => true, () => false);
      if (!recovered) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(recovered).toBe(true);
    expect(assertions).toBe(2);
    expect(harness.exchanges).toHaveLength(1);
  });

  it("bounds session() by the client deadline when the assertion hangs", async () => {
    const tokenProvider = createAssertionTokenProvider({ getAssertion: () => new Promise<string>(() => undefined) });
    const harness = await start({}, { tokenProvider, deadlineMs: 100 });
    const failure = await harness.client.session().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ContinuityError);
    expect(failure).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
  });

  it("rejects session() with ContinuityError when the assertion callback throws", async () => {
    const broken = new TypeError("fetch failed");
    const tokenProvider = createAssertionTokenProvider({ getAssertion: () => Promise.reject(broken) });
    const harness = await start({}, { tokenProvider });
    const failure = await harness.client.session().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ContinuityError);
    expect(failure).toMatchObject({ code: Status.UNKNOWN, cause: broken });
  });

  it("spends a per-call timeoutMs once across all retries", async () => {
    let attempts = 0;
    const harness = await start(
      {
        getStream: async () => {
          attempts += 1;
          await new Promise((resolve) => setTimeout(resolve, 150));
          throw new ServerError(Status.UNAVAILABLE, "try again");
        },
      },
      { retry: { maxAttempts: 6, baseDelayMs: 1, maxDelayMs: 1 } },
    );
    const failure = await harness.client.streams.getStream({ name: stream.name }, { timeoutMs: 250 }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ContinuityError);
    // Each attempt fails after 150 ms, so a 250 ms budget has room for two at most; a budget
    // renewed per attempt would let all six run.
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThanOrEqual(2);
  });

  it("starts no retry once an absolute deadline has passed", async () => {
    let attempts = 0;
    const harness = await start(
      {
        getStream: async () => {
          attempts += 1;
          await new Promise((resolve) => setTimeout(resolve, 150));
          throw new ServerError(Status.UNAVAILABLE, "try again");
        },
      },
      { retry: { maxAttempts: 6, baseDelayMs: 1, maxDelayMs: 1 } },
    );
    const deadline = new Date(Date.now() + 120);
    const failure = await harness.client.streams.getStream({ name: stream.name }, { deadline }).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: Status.DEADLINE_EXCEEDED });
    // Let any attempt a retry might still start reach the server before counting.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(attempts).toBe(1);
  });
});

describe("server addresses", () => {
  const tokenProvider = createStaticTokenProvider("t");

  it("refuses a bare remote host:port, which would silently be dialed in plaintext", () => {
    let failure: unknown;
    try {
      createContinuityClient({ address: "continuity.example.com:443", tokenProvider });
    } catch (error) {
      failure = error;
    }
    expect(failure).toMatchObject({ name: "ContinuityError", code: Status.INVALID_ARGUMENT, reason: "ADDRESS_INSECURE" });
    expect((failure as Error).message).toContain("https://continuity.example.com:443");
  });

  it.each([
    ["https://continuity.example.com", "https://continuity.example.com:443"],
    ["https://continuity.example.com:8443", "https://continuity.example.com:8443"],
    ["http://continuity.internal:50051", "http://continuity.internal:50051"],
    ["127.0.0.1:50051", "127.0.0.1:50051"],
    ["localhost:50051", "localhost:50051"],
    ["[::1]:50051", "[::1]:50051"],
  ])("dials %s as %s", (address, dialed) => {
    const client = createContinuityClient({ address, tokenProvider });
    try {
      expect(client.address).toBe(dialed);
    } finally {
      client.close();
    }
  });

  it.each(["continuity.example.com", "ftp://continuity.example.com:21", "https://continuity.example.com/path", ""])("refuses %j with a clear error", (address) => {
    expect(() => createContinuityClient({ address, tokenProvider })).toThrow(ContinuityError);
  });

  it("takes a bare remote address when the caller's credentials say how to secure it", async () => {
    const { ChannelCredentials } = await import("@grpc/grpc-js");
    const client = createContinuityClient({ address: "continuity.example.com:443", tokenProvider, credentials: ChannelCredentials.createSsl() });
    expect(client.address).toBe("continuity.example.com:443");
    client.close();
  });
});
