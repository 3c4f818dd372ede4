import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { constants as http2Constants, type Http2Server, type ServerHttp2Session } from "node:http2";
import { connect, type Server as NetServer, type Socket } from "node:net";
import type { Server as TlsServer, TLSSocket } from "node:tls";

/** Limits on the connections of one server (README, "Connections"). */
export interface ConnectionLimits {
  /** Connections open at once on each listening address; more are closed as they are accepted. */
  readonly maxConnections: number;
  /** Streams (calls) one connection may have open at once: HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS. */
  readonly maxStreamsPerConnection: number;
  /** A connection without an open stream for this long is closed with GOAWAY. */
  readonly idleTimeoutMs: number;
  /** A connection that has not sent the HTTP/2 connection preface by then is closed. */
  readonly handshakeTimeoutMs: number;
  /** A connection is pinged after this long; one that does not answer within 20 s is closed. */
  readonly keepaliveTimeMs: number;
}

/** Defaults of {@link ConnectionLimits}. */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 1000,
  maxStreamsPerConnection: 1000,
  idleTimeoutMs: 300_000,
  handshakeTimeoutMs: 10_000,
  keepaliveTimeMs: 60_000,
};

const KEEPALIVE_TIMEOUT_MS = 20_000;

/**
 * Streams a client may cancel on one connection before the server asks it, with a graceful
 * GOAWAY, to open a new one. Node's HTTP/2 layer (nghttp2's rapid-reset defence, not
 * configurable in Node 20 nor through grpc-js) kills a connection with GOAWAY(INTERNAL_ERROR)
 * once its client has sent about 1,000 RST_STREAMs faster than 33 a second, failing every
 * call on it; a client cancelling subscriptions does exactly that. nghttp2 stops counting once
 * the server has sent GOAWAY, and after it accepts no new streams on that connection, so
 * moving the client on well before the budget keeps the defence and the client's calls.
 */
export const CANCELLED_STREAMS_PER_CONNECTION = 500;

/**
 * Asks the client of `session` to move to a new connection, with a graceful GOAWAY, once it
 * has cancelled {@link CANCELLED_STREAMS_PER_CONNECTION} streams on it (LIMIT-031). Every
 * HTTP/2 server that faces clients needs it, the round-robin proxy in front of replicas too:
 * there the client's connection ends at the proxy, whose own HTTP/2 layer has the defence.
 */
export function moveAfterCancelledStreams(session: ServerHttp2Session, onMoved: () => void): void {
  let cancelled = 0;
  session.on("stream", (stream) => {
    stream.once("aborted", () => {
      cancelled += 1;
      if (cancelled !== CANCELLED_STREAMS_PER_CONNECTION || session.closed || session.destroyed) return;
      // NO_ERROR with the last stream it processed: calls in flight finish here, new ones
      // go to a new connection.
      session.goaway(http2Constants.NGHTTP2_NO_ERROR);
      onMoved();
    });
  });
}

/** Why the guard closed (or moved) a connection; the label of its metric. */
export type ConnectionClosedReason = "connection_limit" | "handshake_timeout" | "cancelled_streams";

/** The grpc-js server options enforcing the limits grpc-js itself implements. */
export function connectionServerOptions(limits: ConnectionLimits): Record<string, number> {
  return {
    "grpc.max_concurrent_streams": limits.maxStreamsPerConnection,
    "grpc.max_connection_idle_ms": limits.idleTimeoutMs,
    "grpc.keepalive_time_ms": limits.keepaliveTimeMs,
    "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
  };
}

/** A running {@link guardConnections}. */
export interface ConnectionGuard {
  close(): void;
}

// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": what every HTTP/2 client sends first.
const HTTP2_PREFACE_BYTES = 24;

const isHttp2Server = (server: NetServer): server is Http2Server =>
  typeof (server as Partial<Http2Server>).updateSettings === "function";
const isTlsServer = (server: NetServer): server is TlsServer => typeof (server as Partial<TlsServer>).setSecureContext === "function";

/**
 * Enforces what grpc-js has no option for, on the listener(s) grpc-js bound on `address`:
 * the connection cap (`maxConnections` of the listening socket), the handshake timeout, and
 * the move of a client that cancels many streams ({@link CANCELLED_STREAMS_PER_CONNECTION}).
 *
 * grpc-js keeps its HTTP/2 servers to itself; each accepted socket is announced on Node's
 * `net.server.socket` diagnostics channel with the server that accepted it, which is how the
 * guard finds them. It dials `address` once at start so that the listener is found before
 * any client's connection; a listener first seen with a client's connection (a second address
 * of a host name) is guarded from then on.
 */
export async function guardConnections(
  address: string,
  limits: ConnectionLimits,
  onClosed: (reason: ConnectionClosedReason) => void,
): Promise<ConnectionGuard> {
  const index = address.lastIndexOf(":");
  const port = Number(address.slice(index + 1));
  const guarded = new WeakSet<NetServer>();
  // Over TLS the preface arrives encrypted: what counts is what the TLS socket has read.
  const tlsSockets = new WeakMap<Socket, TLSSocket>();
  let found: (() => void) | undefined;

  const guardSession = (session: ServerHttp2Session) => moveAfterCancelledStreams(session, () => onClosed("cancelled_streams"));

  const guardServer = (server: Http2Server) => {
    guarded.add(server);
    server.maxConnections = limits.maxConnections;
    server.on("drop", () => onClosed("connection_limit"));
    server.on("session", guardSession);
    if (isTlsServer(server)) {
      server.on("secureConnection", (tlsSocket: TLSSocket) => {
        // Node's TLS server wraps the accepted socket and keeps it as `_parent`.
        const raw = (tlsSocket as TLSSocket & { _parent?: Socket })._parent;
        if (raw !== undefined) tlsSockets.set(raw, tlsSocket);
      });
    }
    found?.();
  };

  const onSocket = (message: unknown) => {
    const socket = (message as { socket: Socket }).socket;
    const server = (socket as Socket & { server?: NetServer }).server;
    if (server === undefined || socket.localPort !== port || !isHttp2Server(server)) return;
    if (!guarded.has(server)) guardServer(server);
    // A socket that has not even sent the preface by now (over TLS: not finished the
    // handshake and sent the preface) is not an HTTP/2 client; one that has is an idle
    // connection, which grpc-js's idle timeout closes.
    const tls = isTlsServer(server);
    const timer = setTimeout(() => {
      // Over TLS, close the TLS socket that wraps the accepted one as well.
      const tlsSocket = tlsSockets.get(socket);
      const read = tls ? (tlsSocket?.bytesRead ?? 0) : socket.bytesRead;
      if (socket.destroyed || read >= HTTP2_PREFACE_BYTES) return;
      tlsSocket?.destroy();
      socket.destroy();
      onClosed("handshake_timeout");
    }, limits.handshakeTimeoutMs);
    timer.unref();
    socket.once("close", () => clearTimeout(timer));
  };
  subscribe("net.server.socket", onSocket);

  const host = address.slice(0, index).replace(/^\[(.*)\]$/, "$1");
  const dialHost = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "::1" : host;
  await new Promise<void>((resolve) => {
    const probe = connect({ host: dialHost, port });
    const done = () => {
      clearTimeout(timer);
      found = undefined;
      probe.destroy();
      resolve();
    };
    // A listener the probe cannot reach is guarded from its first client on.
    const timer = setTimeout(done, 1000);
    found = done;
    probe.on("error", done);
  });

  return {
    close() {
      unsubscribe("net.server.socket", onSocket);
    },
  };
}
