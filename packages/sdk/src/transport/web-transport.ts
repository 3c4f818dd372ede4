import { createChannel, createClientFactory, FetchTransport, type CompatServiceDefinition } from "nice-grpc-web";
import type { ClientMiddleware } from "nice-grpc-common";
import { parseServerAddress } from "./address.js";
import type { ContinuityCallOptionsExt, ServiceDefinitionLike, Transport } from "./transport.js";

/** What nice-grpc-web sends gRPC-web frames over (`FetchTransport`, `NodeHttpTransport`, …). */
export type WebWire = NonNullable<Parameters<typeof createChannel>[1]>;

/** Options of `createWebTransport`. */
export interface WebTransportOptions {
  /**
   * The server's gRPC-web endpoint: `https://host[:port]` or `http://host[:port]` (the
   * reference server's `--grpc-web-port`). A bare `host:port` is accepted for a loopback
   * host only, and then means `http://`.
   */
  readonly address: string;
  /**
   * `fetch`'s `credentials` mode: `"include"` sends cookies to a server on another origin
   * (it must then answer CORS with credentials). Default `"same-origin"`, as `fetch` has it;
   * the SDK itself authenticates with bearer tokens and needs no cookies.
   */
  readonly credentials?: "omit" | "same-origin" | "include" | undefined;
  /**
   * The wire below gRPC-web, for a runtime without a streaming `fetch`: nice-grpc-web's
   * `NodeHttpTransport` or `WebsocketTransport`. Default: `FetchTransport`.
   */
  readonly wire?: WebWire | undefined;
}

/**
 * A transport for browsers: gRPC-web over `fetch` (nice-grpc-web), with server streaming, so a
 * replica's subscription runs in a web page as it does in Node. Every request is a plain
 * HTTP POST; the server answers CORS (the reference server with `--cors-origin`).
 *
 * gRPC-web carries unary and server-streaming calls only. The one client-streaming call of the
 * protocol, `UploadSnapshot` (opaque streams' `uploadSnapshot`), fails on this transport with
 * UNIMPLEMENTED; everything else — token exchange, appends, reads, subscriptions, checkpoints,
 * handoff — works.
 *
 * @example
 * ```ts
 * const client = createContinuityClient({
 *   transport: createWebTransport({ address: "https://continuity.example.com" }),
 *   tokenProvider,
 * });
 * ```
 *
 * @throws ContinuityError INVALID_ARGUMENT / `ADDRESS_INVALID` or `ADDRESS_INSECURE` for an
 * address that is malformed or would send tokens in plaintext to a remote host unannounced.
 */
export function createWebTransport(options: WebTransportOptions): Transport {
  const address = parseServerAddress(options.address, false);
  const channel = createChannel(
    `${address.scheme ?? "http"}://${address.hostPort}`,
    options.wire ?? FetchTransport(options.credentials === undefined ? {} : { credentials: options.credentials }),
  );
  // fetch has no connection to close: closing the client aborts its calls through the
  // client's close middleware, which is all `close()` has to achieve here.
  return {
    createClient(definition: ServiceDefinitionLike, middleware: ClientMiddleware<ContinuityCallOptionsExt>): unknown {
      return createClientFactory()
        .use(middleware)
        .create(definition as CompatServiceDefinition, channel);
    },
    close(): void {},
  };
}
