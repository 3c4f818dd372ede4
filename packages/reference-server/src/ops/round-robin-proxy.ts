import http2 from "node:http2";
import { Any, ErrorInfo } from "nice-grpc-error-details";
import { Status as RpcStatus } from "nice-grpc-error-details/lib/proto/google/rpc/status.js";
import { ERROR_DOMAIN } from "../errors.js";
import { moveAfterCancelledStreams } from "./connection-guard.js";

/**
 * A per-call round-robin proxy for gRPC over cleartext HTTP/2, for tests and the local
 * multi-replica deployment: each call (HTTP/2 stream) goes to the next replica, so a write and
 * the read after it, even on one client connection, are served by different servers. A TCP
 * proxy would pin a whole connection, with every call on it, to one replica.
 *
 * Hand-written because it is small and only ever faces loopback: headers, data and trailers
 * are relayed as they come, with flow control left to the streams' pipes; a replica that is
 * gone is skipped until it answers again.
 */
export interface RoundRobinProxy {
  /** `host:port` clients connect to. */
  readonly address: string;
  /** How many calls went to each replica, in `replicas` order. */
  readonly calls: readonly number[];
  /** Replaces the replicas (one died, or came back); calls under way are not moved. */
  setReplicas(replicas: readonly string[]): void;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set([":method", ":path", ":scheme", ":authority", ":status", "connection", "keep-alive", "transfer-encoding", "upgrade"]);

function forwardable(headers: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) out[name] = value;
  return out;
}

/**
 * The connection-level receive window of every session of the proxy, each way. All calls of
 * all clients share one session to each replica: with HTTP/2's default of 64 KiB, a single
 * subscriber that stops reading (its stream's window full of data the proxy holds back for
 * it) would stall every other call to that replica. A replica allows 1,000 streams of a 64 KiB
 * window each on a connection, so a window that holds them all keeps the others flowing.
 */
const CONNECTION_WINDOW_BYTES = 1000 * 65_535;

/**
 * The status details of the proxy's own UNAVAILABLE (ERR-001: every error has one ErrorInfo):
 * to the client the replica that went away was shutting down.
 */
const WENT_AWAY_DETAILS = Buffer.from(
  RpcStatus.encode(
    RpcStatus.fromPartial({
      code: 14,
      message: "the replica serving this call went away",
      details: [Any.fromPartial({ typeUrl: `type.googleapis.com/${ErrorInfo.$type}`, value: ErrorInfo.encode(ErrorInfo.fromPartial({ reason: "SHUTTING_DOWN", domain: ERROR_DOMAIN })).finish() })],
    }),
  ).finish(),
).toString("base64");

/** Starts a proxy on `listen` (default an ephemeral loopback port) in front of `replicas`. */
export async function startRoundRobinProxy(initial: readonly string[], listen = "127.0.0.1:0"): Promise<RoundRobinProxy> {
  let replicas = [...initial];
  const sessions = new Map<string, http2.ClientHttp2Session>();
  const calls = replicas.map(() => 0);
  let next = 0;
  const sessionOf = (replica: string): http2.ClientHttp2Session => {
    let session = sessions.get(replica);
    if (session === undefined || session.destroyed || session.closed) {
      session = http2.connect(`http://${replica}`);
      // A replica that died resets its calls; the proxy stays up for the others.
      session.on("error", () => undefined);
      session.once("connect", (connected: http2.ClientHttp2Session) => connected.setLocalWindowSize(CONNECTION_WINDOW_BYTES));
      const created = session;
      const forget = () => {
        if (sessions.get(replica) === created) sessions.delete(replica);
      };
      session.on("close", forget);
      // A replica that asks the proxy to move (GOAWAY: it is idle too long, or had many
      // calls cancelled on it, LIMIT-031) finishes the calls under way on this session;
      // the next calls go on a new one.
      session.on("goaway", forget);
      sessions.set(replica, session);
    }
    return session;
  };

  const server = http2.createServer();
  const clients = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    clients.add(session);
    session.on("close", () => clients.delete(session));
    // The client's connection ends here, so LIMIT-031 is this server's to keep: Node's
    // HTTP/2 layer would otherwise kill a connection on which a client cancels many calls.
    moveAfterCancelledStreams(session, () => undefined);
    session.setLocalWindowSize(CONNECTION_WINDOW_BYTES);
  });
  server.on("stream", (stream, headers) => {
    if (replicas.length === 0) {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    const index = next % replicas.length;
    next += 1;
    calls[index]! += 1;
    const replica = replicas[index]!;
    let upstream: http2.ClientHttp2Stream;
    try {
      upstream = sessionOf(replica).request({
        ":method": headers[":method"] ?? "POST",
        ":path": headers[":path"] ?? "/",
        ":scheme": "http",
        ":authority": replica,
        ...forwardable(headers),
      });
    } catch {
      stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    let trailers: http2.OutgoingHttpHeaders = {};
    /** The replica's final word (trailers, or a trailers-only answer) has arrived. */
    let answered = false;
    upstream.on("response", (responseHeaders) => {
      if (stream.destroyed) return;
      const head = { ":status": responseHeaders[":status"] ?? 200, ...forwardable(responseHeaders) };
      // A trailers-only answer (an error before any message) ends with its headers; grpc-js
      // sends some (a request it cannot decode) as headers with the status, then an empty
      // end of stream.
      if (upstream.endAfterHeaders || responseHeaders["grpc-status"] !== undefined) {
        answered = true;
        stream.respond(head, { endStream: true });
      } else stream.respond(head, { waitForTrailers: true });
    });
    upstream.on("trailers", (received) => {
      answered = true;
      trailers = forwardable(received);
    });
    stream.on("wantTrailers", () => stream.sendTrailers(trailers));
    upstream.on("data", (chunk: Buffer) => {
      if (!stream.write(chunk)) {
        upstream.pause();
        stream.once("drain", () => upstream.resume());
      }
    });
    upstream.on("end", () => {
      if (!stream.destroyed && stream.headersSent && !stream.writableEnded) stream.end();
    });
    stream.pipe(upstream);
    // A cancel by the client is passed on to the replica. A replica that goes away (killed, or
    // its connection lost) before its final word is, to the client, UNAVAILABLE, as a load
    // balancer answers: an HTTP/2 reset would reach it as INTERNAL, which says nothing of retrying.
    upstream.on("close", () => {
      if (stream.destroyed || answered) return;
      // A reset of this one call by a replica that is still there (a malformed request) is
      // passed on as it came, as if the client were connected to the replica.
      const session = upstream.session;
      if (session !== undefined && !session.destroyed && !session.closed && upstream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) {
        stream.close(upstream.rstCode);
        return;
      }
      const unavailable = { "grpc-status": "14", "grpc-message": "the replica serving this call went away", "grpc-status-details-bin": WENT_AWAY_DETAILS };
      if (!stream.headersSent) stream.respond({ ":status": 200, "content-type": "application/grpc", ...unavailable }, { endStream: true });
      else {
        trailers = unavailable;
        stream.end();
      }
    });
    upstream.on("error", () => undefined);
    stream.on("error", () => undefined);
    stream.on("close", () => {
      if (!upstream.destroyed) upstream.close(http2.constants.NGHTTP2_CANCEL);
    });
  });

  const host = listen.slice(0, listen.lastIndexOf(":"));
  const port = Number(listen.slice(listen.lastIndexOf(":") + 1));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address();
  const address = `${host}:${typeof bound === "object" && bound !== null ? bound.port : port}`;
  return {
    address,
    calls,
    setReplicas(list) {
      replicas = [...list];
      calls.length = 0;
      calls.push(...replicas.map(() => 0));
    },
    async close() {
      for (const session of sessions.values()) session.destroy();
      sessions.clear();
      for (const session of clients) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
