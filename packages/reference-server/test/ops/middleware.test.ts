import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { createChannel, createClientFactory, createServer, Metadata, Status, type Channel, type Server } from "nice-grpc";
import { errorDetailsServerMiddleware } from "nice-grpc-error-details";
import { HealthDefinition } from "nice-grpc-server-health";
import { pino } from "pino";
import { protocolError } from "../../src/errors.js";
import { createLoggingMiddleware } from "../../src/ops/logging-middleware.js";
import { createMetricsMiddleware } from "../../src/ops/metrics-middleware.js";
import { createServerMetrics, type ServerMetrics } from "../../src/ops/metrics.js";

// The ops middlewares wrap every call, streaming ones included; these tests pin down that
// they observe without interfering: cancellation reaches the handler, outcomes are
// classified, and nothing from the request reaches the log.

interface Rig {
  readonly lines: Record<string, unknown>[];
  readonly metrics: ServerMetrics;
  readonly channel: Channel;
  readonly server: Server;
  readonly handler: { finished: boolean; sawAbort: boolean };
}

let rig: Rig | undefined;

afterEach(async () => {
  rig?.channel.close();
  await rig?.server.shutdown();
  rig = undefined;
});

async function start(): Promise<Rig> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const metrics = createServerMetrics();
  const handler = { finished: false, sawAbort: false };
  const server = createServer()
    .use(errorDetailsServerMiddleware)
    .use(createLoggingMiddleware({ logger: pino({ level: "info" }, sink) }))
    .use(createMetricsMiddleware(metrics));
  server.add(HealthDefinition, {
    async check(request) {
      if (request.service === "fail") throw protocolError(Status.NOT_FOUND, "STREAM_NOT_FOUND", "nope");
      return { status: 1 };
    },
    async *watch(_request, context) {
      try {
        yield { status: 1 };
        await new Promise<void>((resolve) =>
          context.signal.addEventListener("abort", () => {
            handler.sawAbort = true;
            resolve();
          }),
        );
      } finally {
        handler.finished = true;
      }
    },
  });
  const port = await server.listen("127.0.0.1:0");
  rig = { lines, metrics, channel: createChannel(`127.0.0.1:${port}`), server, handler };
  return rig;
}

describe("logging and metrics middleware", () => {
  it("let a client's cancel reach a streaming handler, and record it as CANCELLED", async () => {
    const { channel, handler, lines, metrics } = await start();
    const client = createClientFactory().create(HealthDefinition, channel);
    const abort = new AbortController();
    const stream = client.watch({ service: "" }, { signal: abort.signal })[Symbol.asyncIterator]();
    await stream.next();
    abort.abort();
    await expect(stream.next()).rejects.toThrow();
    await expect.poll(() => handler.finished).toBe(true);
    expect(handler.sawAbort).toBe(true);
    await expect.poll(() => lines.find((l) => l["method"] === "/grpc.health.v1.Health/Watch")).toMatchObject({ code: "CANCELLED" });
    expect(await metrics.registry.getSingleMetricAsString("continuity_rpc_duration_seconds")).toContain(
      'continuity_rpc_duration_seconds_count{method="/grpc.health.v1.Health/Watch",code="CANCELLED"} 1',
    );
  });

  it("log one line per call with code and reason, echo the request id, and log no request data", async () => {
    const { channel, lines, metrics } = await start();
    const client = createClientFactory().create(HealthDefinition, channel);
    const secret = "Bearer do-not-log-me";
    const header = { authorization: secret, "x-request-id": "trace-42" };
    let echoed: string | undefined;
    await client.check(
      { service: "" },
      { metadata: Metadata(header), onHeader: (h) => (echoed = h.get("x-request-id")) },
    );
    expect(echoed).toBe("trace-42");
    await expect(client.check({ service: "fail" }, { metadata: Metadata({ authorization: secret }) })).rejects.toThrow(/NOT_FOUND/);
    // A request id that could smuggle text into logs is replaced.
    let replaced: string | undefined;
    await client.check(
      { service: "" },
      { metadata: Metadata({ "x-request-id": `a b ${"x".repeat(80)}` }), onHeader: (h) => (replaced = h.get("x-request-id")) },
    );
    expect(replaced).toMatch(/^[A-Za-z0-9_-]{12}$/);

    const calls = lines.filter((l) => l["msg"] === "call");
    expect(calls.map((l) => [l["requestId"] === "trace-42", l["code"], l["reason"]])).toEqual([
      [true, "OK", undefined],
      [false, "NOT_FOUND", "STREAM_NOT_FOUND"],
      [false, "OK", undefined],
    ]);
    expect(JSON.stringify(lines)).not.toContain("do-not-log-me");
    expect(JSON.stringify(lines)).not.toContain('"fail"');
    expect(await metrics.registry.getSingleMetricAsString("continuity_errors_total")).toContain(
      'continuity_errors_total{method="/grpc.health.v1.Health/Check",code="NOT_FOUND",reason="STREAM_NOT_FOUND"} 1',
    );
  });
});
