import { ChannelCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { createChannel, createClientFactory, type TsProtoServiceDefinition } from "nice-grpc";
import type { ClientMiddleware } from "nice-grpc-common";
import { parseServerAddress } from "./address.js";
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
  /** Channel credentials; they win over the scheme. Default: TLS for `https://`, plaintext otherwise. */
  readonly credentials?: ChannelCredentials | undefined;
  /** Options passed to the grpc-js channel (keepalive, message sizes, …). */
  readonly channelOptions?: ChannelOptions | undefined;
}

/**
 * The default transport: one HTTP/2 channel (grpc-js) shared by every service client, so the
 * SDK holds exactly one connection per server.
 *
 * @throws ContinuityError INVALID_ARGUMENT / `ADDRESS_INVALID` or `ADDRESS_INSECURE` for an
 * address that is malformed or does not say how to secure it.
 */
export function createGrpcTransport(options: GrpcTransportOptions): Transport {
  const address = parseServerAddress(options.address, options.credentials !== undefined);
  const credentials = options.credentials ?? (address.scheme === "https" ? ChannelCredentials.createSsl() : ChannelCredentials.createInsecure());
  const channel = createChannel(address.text, credentials, {
    // Snapshot chunks and delta pages can exceed grpc-js's 4 MiB default; the server's own
    // limits (`Limits`) are the real bound.
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    ...options.channelOptions,
  });
  return {
    createClient(definition: ServiceDefinitionLike, middleware: ClientMiddleware<ContinuityCallOptionsExt>): unknown {
      return createClientFactory()
        .use(middleware)
        .create(definition as TsProtoServiceDefinition, channel);
    },
    close(): void {
      channel.close();
    },
  };
}
