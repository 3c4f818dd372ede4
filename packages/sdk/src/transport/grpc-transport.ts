import { ChannelCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { createChannel, createClientFactory, type TsProtoServiceDefinition } from "nice-grpc";
import { Status, type ClientMiddleware } from "nice-grpc-common";
import { ContinuityError } from "../errors/continuity-error.js";
import { parseServerAddress, requireTls } from "./address.js";
import { createConnectionHintMiddleware } from "./connection-hints.js";
import type { ContinuityCallOptionsExt, ServiceDefinitionLike, Transport } from "./transport.js";

/** Options of `createGrpcTransport`. */
export interface GrpcTransportOptions {
  /**
   * `https://host[:port]` (TLS), `http://host[:port]` (plaintext), or `host:port` — the last
   * only for a loopback host or together with `credentials`: a bare remote address would be
   * dialed in plaintext without saying so, and is refused with INVALID_ARGUMENT /
   * `ADDRESS_INSECURE`.
   */
  readonly address: string;
  /** Channel credentials; they win over the scheme and `tls`. Default: TLS for `https://` or `tls`, plaintext otherwise. */
  readonly credentials?: ChannelCredentials | undefined;
  /**
   * Dial with TLS whatever the address says (a bare `host:port` then means TLS; `http://`
   * is refused as a contradiction), with a CA of your own or a client certificate. `true`:
   * TLS with the system's trusted roots, as `https://` does.
   */
  readonly tls?: true | ClientTlsOptions | undefined;
  /** Options passed to the grpc-js channel (keepalive, message sizes, …). */
  readonly channelOptions?: ChannelOptions | undefined;
}

/** TLS settings of a client (`tls` of {@link GrpcTransportOptions} and of the client options). */
export interface ClientTlsOptions {
  /** PEM certificate(s) of the CA(s) to trust instead of the system's roots, e.g. for a self-signed server certificate. */
  readonly ca?: string | Uint8Array | undefined;
  /** PEM client certificate (chain), for a server that requires client certificates (mutual TLS); needs `privateKey`. */
  readonly certificate?: string | Uint8Array | undefined;
  /** PEM private key of `certificate`. */
  readonly privateKey?: string | Uint8Array | undefined;
}

/**
 * The default transport: one HTTP/2 channel (grpc-js) shared by every service client, so the
 * SDK holds exactly one connection per server.
 *
 * @throws ContinuityError INVALID_ARGUMENT / `ADDRESS_INVALID` or `ADDRESS_INSECURE` for an
 * address that is malformed or does not say how to secure it.
 *
 * @example
 * ```ts
 * // Usually made by createContinuityClient from `address`; build one to tune the channel.
 * const transport = createGrpcTransport({
 *   address: "https://continuity.example.com",
 *   channelOptions: { "grpc.keepalive_time_ms": 30_000 },
 * });
 * const client = createContinuityClient({ transport, tokenProvider });
 * ```
 */
export function createGrpcTransport(options: GrpcTransportOptions): Transport {
  const parsed = parseServerAddress(options.address, options.credentials !== undefined || options.tls !== undefined);
  const address = options.tls === undefined ? parsed : requireTls(parsed);
  const credentials = options.credentials ?? (address.scheme === "https" ? tlsCredentials(options.tls === true ? {} : (options.tls ?? {})) : ChannelCredentials.createInsecure());
  // `_isSecure` is public in grpc-js's types: the caller's own credentials decide too.
  const hints = createConnectionHintMiddleware(address.hostPort, credentials._isSecure());
  const channel = createChannel(address.hostPort, credentials, {
    // Snapshot chunks and delta pages can exceed grpc-js's 4 MiB default; the server's own
    // limits (`Limits`) are the real bound.
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    // grpc-js waits up to 2 minutes between dials to a server that was down, failing every
    // call at once meanwhile; the SDK's own retries back off to 10 s, and a device coming
    // back online should not wait longer than that for its first answer.
    "grpc.max_reconnect_backoff_ms": 10_000,
    ...options.channelOptions,
  });
  return {
    createClient(definition: ServiceDefinitionLike, middleware: ClientMiddleware<ContinuityCallOptionsExt>): unknown {
      // The middleware attached first runs closest to the wire: the hints see grpc-js's errors.
      return createClientFactory()
        .use(hints)
        .use(middleware)
        .create(definition as TsProtoServiceDefinition, channel);
    },
    close(): void {
      channel.close();
    },
  };
}

function tlsCredentials(tls: ClientTlsOptions): ChannelCredentials {
  if ((tls.certificate === undefined) !== (tls.privateKey === undefined)) {
    throw new ContinuityError({
      code: Status.INVALID_ARGUMENT,
      message: "tls.certificate and tls.privateKey go together: a client certificate is sent with its key",
    });
  }
  const pem = (value: string | Uint8Array | undefined) => (value === undefined ? null : Buffer.from(value));
  return ChannelCredentials.createSsl(pem(tls.ca), pem(tls.privateKey), pem(tls.certificate));
}
