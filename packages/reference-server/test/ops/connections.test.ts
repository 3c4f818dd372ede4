// Defects 7 and 9 of issue 10, over real sockets: idle, preface-only and silent connections
// were never closed, nothing capped connections or streams per connection, and a client that
// cancelled about 1,000 subscriptions on one channel had its connection killed with every
// call on it failing INTERNAL.
import { connect as connectHttp2, type ClientHttp2Session } from "node:http2";
import { connect, type Socket } from "node:net";
import { createChannel, createClient } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";
import { afterEach, describe, expect, it } from "vitest";
import type { ConnectionLimits } from "../../src/ops/connection-guard.js";
import { startTestServer, type TestServer } from "../../src/testing/harness.js";

const SERVING = 1;
const HTTP2_PREFACE = Buffer.concat([
  Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"),
  // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
  Buffer.from("000000040000000000", "hex"),
]);

interface RawConnection {
  readonly socket: Socket;
  readonly closed: Promise<void>;
}

/** Opens a TCP connection that sends `hello` (maybe nothing) and then stays silent. */
async function rawConnection(address: string, hello: Buffer | undefined): Promise<RawConnection> {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), Number(address.slice(address.lastIndexOf(":") + 1))];
  const socket = connect({ host, port });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.on("error", () => undefined);
  socket.resume(); // read (and drop) whatever the server says, so only the server decides to close
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  if (hello !== undefined) socket.write(hello);
  return { socket, closed };
}

/** How many of `connections` are still open after `ms`. */
async function stillOpenAfter(connections: readonly RawConnection[], ms: number): Promise<number> {
  let closed = 0;
  for (const connection of connections) void connection.closed.then(() => (closed += 1));
  const deadline = Date.now() + ms;
  while (closed < connections.length && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return connections.length - closed;
}

async function metric(server: TestServer, name: string): Promise<string> {
  return (await server.server.deps.metrics.registry.metrics()).split("\n").filter((line) => line.startsWith(name)).join("\n");
}

describe("connection limits", () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  const start = async (connections: Partial<ConnectionLimits>) => {
    const server = await startTestServer({ connections });
    cleanups.push(() => server.close());
    return server;
  };
  const track = (connection: RawConnection) => {
    cleanups.push(() => void connection.socket.destroy());
    return connection;
  };

  it("closes 500 preface-only connections once idle and 500 silent ones after the handshake timeout, but not a connection with a call open", async () => {
    const server = await start({ idleTimeoutMs: 1_000, handshakeTimeoutMs: 500, maxConnections: 2_000 });
    // A real client with a Watch open: busy, so neither limit applies to it.
    const channel = createChannel(server.address);
    cleanups.push(() => channel.close());
    const watch = new AbortController();
    cleanups.push(() => watch.abort());
    const updates: number[] = [];
    const watching = (async () => {
      for await (const update of createClient(HealthDefinition, channel).watch({ service: "" }, { signal: watch.signal })) updates.push(update.status);
    })().catch((error: unknown) => error);

    const prefaceOnly: RawConnection[] = [];
    const silent: RawConnection[] = [];
    for (let i = 0; i < 500; i++) {
      prefaceOnly.push(track(await rawConnection(server.address, HTTP2_PREFACE)));
      silent.push(track(await rawConnection(server.address, undefined)));
    }
    expect(await stillOpenAfter(silent, 5_000)).toBe(0);
    expect(await stillOpenAfter(prefaceOnly, 5_000)).toBe(0);
    expect(await metric(server, "continuity_connections_closed_total")).toContain('reason="handshake_timeout"} 500');

    // The busy connection outlived both timeouts and still serves.
    expect(updates).toEqual([SERVING]);
    expect((await createClient(HealthDefinition, channel).check({ service: "" })).status).toBe(SERVING);
    watch.abort();
    await watching;
  });

  it("refuses connections past the cap, and serves again once some close", async () => {
    const server = await start({ maxConnections: 50 });
    const open: RawConnection[] = [];
    for (let i = 0; i < 50; i++) open.push(track(await rawConnection(server.address, HTTP2_PREFACE)));
    expect(await stillOpenAfter(open, 300)).toBe(50);

    const extra = track(await rawConnection(server.address, HTTP2_PREFACE));
    expect(await stillOpenAfter([extra], 2_000)).toBe(0);
    const channel = createChannel(server.address);
    cleanups.push(() => channel.close());
    const health = createClient(HealthDefinition, channel);
    await expect(health.check({ service: "" }, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
    expect(await metric(server, "continuity_connections_closed_total")).toMatch(/reason="connection_limit"\} [1-9]/);

    for (const connection of open.slice(0, 10)) connection.socket.destroy();
    // The server sees those closes a moment later; until then a new connection may still be refused.
    let status: number | string = "refused";
    for (const deadline = Date.now() + 5_000; status !== SERVING && Date.now() < deadline; ) {
      const retry = createChannel(server.address);
      status = await createClient(HealthDefinition, retry)
        .check({ service: "" }, { signal: AbortSignal.timeout(1_000) })
        .then((response) => response.status, () => "refused");
      retry.close();
    }
    expect(status).toBe(SERVING);
  });

  it("tells every client how many streams a connection may have open", async () => {
    const server = await start({ maxStreamsPerConnection: 128 });
    const session: ClientHttp2Session = connectHttp2(`http://${server.address}`);
    cleanups.push(() => void session.destroy());
    const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve) => session.once("remoteSettings", resolve));
    expect(settings.maxConcurrentStreams).toBe(128);
  });

  it("survives 1,500 cancelled subscriptions on one channel: a subscription on it stays live and later calls work", async () => {
    const server = await start({});
    const session = await server.signIn("course-a", "cancel-storm");
    const subscribe = (signal: AbortSignal) =>
      session.clients.subscription.subscribe({ parent: session.subject, cursor: "", heartbeatSeconds: 0 }, { signal })[Symbol.asyncIterator]();

    const live = new AbortController();
    cleanups.push(() => live.abort());
    const liveStream = subscribe(live.signal);
    expect((await liveStream.next()).value?.event?.$case).toBe("ready");
    // Heartbeats may arrive; only an end or an error counts.
    const liveEnd = (async () => {
      try {
        while (!(await liveStream.next()).done) {
          // still live
        }
        return "ended";
      } catch (error) {
        return String(error);
      }
    })();

    const failures: string[] = [];
    const cancelAfterReady = async (i: number) => {
      const call = new AbortController();
      const stream = subscribe(call.signal);
      try {
        await stream.next();
        call.abort();
        await stream.next();
      } catch (error) {
        if (!(error instanceof Error && error.name === "AbortError")) failures.push(`${i}: ${String(error)}`);
      }
    };
    // 25 at a time, as a client resubscribing a lot might.
    for (let round = 0; round < 60; round++) await Promise.all(Array.from({ length: 25 }, (_, i) => cancelAfterReady(round * 25 + i)));
    expect(failures).toEqual([]);
    expect(await Promise.race([liveEnd, new Promise((resolve) => setTimeout(() => resolve("live"), 200))])).toBe("live");
    await expect(session.clients.stream.listStreams({ parent: session.subject, pageSize: 10, pageToken: "" })).resolves.toBeDefined();
    expect(await metric(server, "continuity_connections_closed_total")).toMatch(/reason="cancelled_streams"\} [1-9]/);
  }, 120_000);
});
