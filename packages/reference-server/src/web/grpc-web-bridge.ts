/**
 * gRPC-web on a port of its own, so a browser app talks to the reference server with no proxy
 * in between (README, "gRPC-web and browsers").
 *
 * Hand-written because no maintained Node library puts gRPC-web in front of a grpc-js server:
 * Envoy and grpcwebproxy do it as separate processes, and connect-node speaks gRPC-web only
 * for its own protobuf-es handlers, not for services registered with nice-grpc. The
 * translation is small: gRPC-web is gRPC's framing over plain HTTP POST, with the trailers
 * moved into a last body frame (flag 0x80). Each call is forwarded, message bytes untouched,
 * to the server's own gRPC port over one loopback HTTP/2 connection, so every interceptor and
 * middleware (auth, limits, SUB-034's stall guard, error details) applies unchanged, and an
 * error's `grpc-status-details-bin` (its ErrorInfo) reaches the browser in the trailer frame.
 *
 * The port speaks HTTP/1.1 (what browsers use without TLS) and HTTP/2 with prior knowledge
 * (h2c), told apart by the first bytes of a connection; with `tls`, HTTPS with HTTP/2 or
 * HTTP/1.1 as ALPN decides. Unary and server-streaming calls are
 * carried; gRPC-web has no client streaming, so UploadSnapshot answers UNIMPLEMENTED. CORS is
 * answered for the configured origins only. Bounded: one request message of at most
 * `maxMessageBytes`, at most `maxCalls` calls in flight, at most `maxConnections` connections,
 * and a response write that the browser does not take pauses the upstream call (backpressure).
 */
import { Client, credentials, Metadata, type ClientReadableStream, type StatusObject } from "@grpc/grpc-js";
import { createServer as createHttp1Server, type IncomingHttpHeaders } from "node:http";
import { createSecureServer as createHttpsServer, createServer as createHttp2Server } from "node:http2";
import { createServer as createNetServer, type AddressInfo, type Socket } from "node:net";
import { Duplex } from "node:stream";
import { Status } from "nice-grpc-common";

/** The shape of one method, as the bridge needs it. */
export interface GrpcWebMethod {
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

/** Options of {@link startGrpcWebBridge}. */
export interface GrpcWebBridgeOptions {
  /** `host:port` to listen on; port 0 picks a free one. */
  readonly listen: string;
  /** `host:port` of the server's own gRPC port. */
  readonly upstream: string;
  /** True when that port serves TLS. */
  readonly upstreamTls: boolean;
  /** Certificate chain and key (PEM) to serve HTTPS with; undefined serves plaintext. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer } | undefined;
  /** Methods by path (`/continuity.v1.StreamService/AppendDeltas`); any other path is UNIMPLEMENTED. */
  readonly methods: ReadonlyMap<string, GrpcWebMethod>;
  /** Origins answered with CORS headers (`https://app.example.com`), or `*` for any. Empty: same origin only. */
  readonly corsOrigins: readonly string[];
  /** Largest request message accepted, in bytes (the gRPC port's own receive limit). */
  readonly maxMessageBytes: number;
  /** Calls in flight at once; more answer RESOURCE_EXHAUSTED. */
  readonly maxCalls: number;
  /** Connections open at once; more are closed as they arrive. */
  readonly maxConnections: number;
}

/** A running bridge. */
export interface GrpcWebBridge {
  /** The bound `host:port`. */
  readonly address: string;
  /** Stops accepting, cancels the calls in flight and closes the upstream connection. */
  close(): Promise<void>;
}

/** Request headers that describe the HTTP exchange, not the call: never forwarded as metadata. */
const HOP_HEADERS = new Set([
  "accept",
  "accept-encoding",
  "accept-language",
  "cache-control",
  "connection",
  "content-length",
  "content-type",
  "cookie",
  "dnt",
  "grpc-accept-encoding",
  "grpc-encoding",
  "grpc-timeout",
  "host",
  "keep-alive",
  "origin",
  "pragma",
  "priority",
  "referer",
  "te",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "x-grpc-web",
  "x-user-agent",
]);

/** Trailers grpc-js reports that belong to HTTP/2, not to the call. */
const UPSTREAM_HEADERS = new Set(["content-type", "date", "grpc-accept-encoding", "grpc-encoding", "grpc-status", "grpc-message"]);

const MESSAGE_KEY = /^[0-9a-z_.-]+$/;
const TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const TIMEOUT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** What the bridge needs of an HTTP/1 or HTTP/2 compatibility request and response. */
interface WebRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  on(event: "data", listener: (chunk: Buffer) => void): unknown;
  on(event: "end" | "error", listener: (error?: unknown) => void): unknown;
  resume(): unknown;
}
interface WebResponse {
  readonly headersSent: boolean;
  readonly writableEnded: boolean;
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: Uint8Array): boolean;
  end(): unknown;
  end(chunk: Uint8Array): unknown;
  once(event: "drain" | "close", listener: () => void): unknown;
}

/** Starts the bridge and resolves once it listens. */
export async function startGrpcWebBridge(options: GrpcWebBridgeOptions): Promise<GrpcWebBridge> {
  // The upstream is this process's own port on loopback, so its certificate (issued for the
  // public name) is not checked: there is no one in between to check it against.
  const upstreamCredentials = options.upstreamTls
    ? credentials.createSsl(null, null, null, { rejectUnauthorized: false, checkServerIdentity: () => undefined })
    : credentials.createInsecure();
  const upstream = new Client(options.upstream, upstreamCredentials, {
    "grpc.max_send_message_length": options.maxMessageBytes,
    "grpc.max_receive_message_length": -1,
  });
  const calls = new Set<ClientReadableStream<Buffer>>();
  const allowAnyOrigin = options.corsOrigins.includes("*");
  const allowedOrigins = new Set(options.corsOrigins);

  function corsHeaders(origin: string | undefined): Record<string, string> {
    if (origin === undefined || !(allowAnyOrigin || allowedOrigins.has(origin))) return {};
    return { "access-control-allow-origin": allowAnyOrigin ? "*" : origin, vary: "origin" };
  }

  function handle(req: WebRequest, res: WebResponse): void {
    const origin = req.headers.origin;
    const cors = corsHeaders(origin);
    if (req.method === "OPTIONS") {
      req.resume();
      if (origin === undefined || cors["access-control-allow-origin"] === undefined) {
        res.writeHead(403, { "content-type": "text/plain" });
        res.end(new TextEncoder().encode("origin not allowed\n"));
        return;
      }
      res.writeHead(204, {
        ...cors,
        "access-control-allow-methods": "POST",
        "access-control-allow-headers": String(req.headers["access-control-request-headers"] ?? "content-type,x-grpc-web,x-user-agent"),
        "access-control-max-age": "600",
      });
      res.end();
      return;
    }
    const contentType = String(req.headers["content-type"] ?? "");
    if (req.method !== "POST" || !/^application\/grpc-web(\+proto)?(;|$)/.test(contentType)) {
      req.resume();
      res.writeHead(415, { ...cors, "content-type": "text/plain" });
      res.end(new TextEncoder().encode("this port speaks gRPC-web (application/grpc-web+proto) only\n"));
      return;
    }
    const answer = createAnswer(res, cors);
    const path = (req.url ?? "").split("?")[0] ?? "";
    // An unknown path is forwarded too: the gRPC port answers it UNIMPLEMENTED, as it would
    // over gRPC. Errors of the bridge's own (framing, size, load) carry no ErrorInfo, like
    // grpc-js's own transport errors; everything the services answer keeps theirs.
    if (options.methods.get(path)?.requestStream === true) {
      req.resume();
      answer.fail(Status.UNIMPLEMENTED, `${path} streams its requests, which gRPC-web cannot carry; call it over gRPC`);
      return;
    }
    if (calls.size >= options.maxCalls) {
      req.resume();
      answer.fail(Status.RESOURCE_EXHAUSTED, `the gRPC-web port has ${options.maxCalls} calls in flight; retry later`);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let refused = false;
    req.on("data", (chunk) => {
      if (refused) return;
      received += chunk.length;
      if (received > options.maxMessageBytes + 5) {
        refused = true;
        answer.fail(Status.RESOURCE_EXHAUSTED, `the request is larger than ${options.maxMessageBytes} bytes`);
        return;
      }
      chunks.push(chunk);
    });
    req.on("error", () => undefined);
    req.on("end", () => {
      if (refused) return;
      const body = Buffer.concat(chunks, received);
      const message = unframe(body);
      if (typeof message === "string") {
        answer.fail(Status.INTERNAL, message);
        return;
      }
      const deadline = parseTimeout(req.headers["grpc-timeout"]);
      if (deadline === "invalid") {
        answer.fail(Status.INTERNAL, "grpc-timeout is not a gRPC timeout (e.g. 10S)");
        return;
      }
      forward(path, message, toMetadata(req.headers), deadline, answer, res);
    });
  }

  function forward(path: string, message: Buffer, metadata: Metadata, deadline: Date | undefined, answer: Answer, res: WebResponse): void {
    const call = upstream.makeServerStreamRequest<Buffer, Buffer>(
      path,
      (bytes) => bytes,
      (bytes) => bytes,
      message,
      metadata,
      deadline === undefined ? {} : { deadline },
    );
    calls.add(call);
    let status: StatusObject | undefined;
    let ended = false;
    const finish = (): void => {
      if (status === undefined || !ended) return;
      calls.delete(call);
      answer.end(status);
    };
    call.on("metadata", (headers: Metadata) => answer.headers(headers));
    call.on("data", (bytes: Buffer) => {
      if (!answer.message(bytes)) {
        call.pause();
        res.once("drain", () => call.resume());
      }
    });
    call.on("end", () => {
      ended = true;
      finish();
    });
    // A failed call also emits `error`; its status (with the details trailer) comes as `status`.
    call.on("error", () => {
      ended = true;
      finish();
    });
    call.on("status", (received: StatusObject) => {
      status = received;
      finish();
    });
    res.once("close", () => {
      if (!res.writableEnded) call.cancel();
      calls.delete(call);
    });
  }

  const http1 = createHttp1Server((req, res) => handle(req, res));
  const http2 = createHttp2Server((req, res) => handle(req, res));
  const https = options.tls === undefined ? undefined : createHttpsServer({ cert: options.tls.cert, key: options.tls.key, allowHTTP1: true }, (req, res) => handle(req, res));
  const sockets = new Set<Socket>();
  const net = createNetServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    if (https !== undefined) {
      https.emit("connection", socket);
      return;
    }
    socket.once("data", (first) => {
      socket.pause();
      // Node's HTTP/2 session reads the socket's handle itself and would miss bytes already
      // read, so an h2c connection is handed over as a stream that replays them first.
      if (first.subarray(0, 3).toString("latin1") === "PRI") {
        http2.emit("connection", replay(socket, first));
      } else {
        socket.unshift(first);
        http1.emit("connection", socket);
        socket.resume();
      }
    });
  });
  net.maxConnections = options.maxConnections;
  const { host, port } = splitHostPort(options.listen);
  await new Promise<void>((resolve, reject) => {
    net.once("error", reject);
    net.listen(port, host, () => {
      net.off("error", reject);
      resolve();
    });
  });
  const bound = (net.address() as AddressInfo).port;
  return {
    address: `${host.includes(":") ? `[${host}]` : host}:${bound}`,
    async close() {
      for (const call of calls) call.cancel();
      calls.clear();
      const closed = new Promise<void>((resolve) => net.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      http2.close();
      http1.close();
      https?.close();
      upstream.close();
      await closed;
    },
  };
}

/** One gRPC-web response: headers once, then message frames, then the trailer frame. */
interface Answer {
  headers(metadata: Metadata): void;
  message(bytes: Buffer): boolean;
  end(status: StatusObject): void;
  fail(code: Status, message: string): void;
}

function createAnswer(res: WebResponse, cors: Record<string, string>): Answer {
  let exposed: string[] = [];
  const sendHeaders = (extra: Record<string, string>): void => {
    if (res.headersSent) return;
    res.writeHead(200, {
      ...cors,
      ...extra,
      "content-type": "application/grpc-web+proto",
      "cache-control": "no-store",
      ...(cors["access-control-allow-origin"] === undefined
        ? {}
        : { "access-control-expose-headers": ["grpc-status", "grpc-message", "grpc-status-details-bin", ...exposed].join(",") }),
    });
  };
  return {
    headers(metadata) {
      const extra = headerLines(metadata);
      exposed = Object.keys(extra);
      sendHeaders(extra);
    },
    message(bytes) {
      sendHeaders({});
      return res.write(frame(0x00, bytes));
    },
    end(status) {
      if (res.writableEnded) return;
      sendHeaders({});
      const lines = [`grpc-status: ${status.code}`, `grpc-message: ${percentEncode(status.details)}`];
      for (const [key, value] of Object.entries(headerLines(status.metadata))) lines.push(`${key}: ${value}`);
      res.end(frame(0x80, Buffer.from(`${lines.join("\r\n")}\r\n`, "latin1")));
    },
    fail(code, message) {
      this.end({ code, details: message, metadata: new Metadata() });
    },
  };
}

/** Metadata as HTTP header lines; binary values base64 as gRPC-web has them. */
function headerLines(metadata: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.toHttp2Headers())) {
    if (UPSTREAM_HEADERS.has(key) || key.startsWith(":") || value === undefined) continue;
    out[key] = Array.isArray(value) ? value.join(", ") : String(value);
  }
  return out;
}

/** The one uncompressed message of a unary or server-streaming request, or why there is none. */
function unframe(body: Buffer): Buffer | string {
  if (body.length < 5) return "the request holds no gRPC message frame";
  const flags = body[0]!;
  const length = body.readUInt32BE(1);
  if ((flags & 0x01) !== 0) return "compressed request messages are not supported";
  if ((flags & 0x80) !== 0) return "a request cannot carry a trailer frame";
  if (body.length !== 5 + length) return "the request must hold exactly one message frame";
  return body.subarray(5);
}

function frame(flags: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + payload.length);
  out[0] = flags;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, 5);
  return out;
}

function toMetadata(headers: IncomingHttpHeaders): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || HOP_HEADERS.has(key) || key.startsWith(":") || key.startsWith("sec-") || key.startsWith("access-control-") || !MESSAGE_KEY.test(key)) {
      continue;
    }
    const values = Array.isArray(value) ? value : [value];
    for (const item of values) {
      if (key.endsWith("-bin")) {
        for (const part of item.split(/,\s*/)) metadata.add(key, Buffer.from(part, "base64"));
      } else {
        metadata.add(key, item);
      }
    }
  }
  return metadata;
}

function parseTimeout(header: string | string[] | undefined): Date | undefined | "invalid" {
  if (header === undefined) return undefined;
  const match = TIMEOUT.exec(Array.isArray(header) ? (header[0] ?? "") : header);
  if (match === null) return "invalid";
  return new Date(Date.now() + Number(match[1]) * TIMEOUT_MS[match[2]!]!);
}

/** grpc-message is percent-encoded: printable ASCII except `%` passes, every other UTF-8 byte is escaped. */
function percentEncode(text: string): string {
  let out = "";
  for (const byte of Buffer.from(text, "utf8")) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** A stream over `socket` that yields `first` before the socket's later bytes. */
function replay(socket: Socket, first: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(error, callback) {
      socket.destroy(error ?? undefined);
      callback(error);
    },
  });
  duplex.push(first);
  socket.on("data", (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.once("end", () => duplex.push(null));
  socket.once("close", () => duplex.destroy());
  socket.resume();
  return duplex;
}

function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(address.slice(at + 1)) };
}
