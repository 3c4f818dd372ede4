import { ChannelCredentials, type ChannelOptions } from "@grpc/grpc-js";
import { createChannel, createClientFactory, type TsProtoServiceDefinition } from "nice-grpc";
import type { ClientMiddleware } from "nice-grpc-common";
import type { ContinuityCallOptionsExt, ServiceDefinitionLike, Transport } from "./transport.js";

/** Options of `createGrpcTransport`. */
export interface GrpcTransportOptions {
  /** `host:port`, or `http://host:port` / `https://host:port` to pick the credentials by scheme. */
  readonly address: string;
  /** Channel credentials; default: TLS for `https://`, plaintext otherwise. */
  readonly credentials?: ChannelCredentials | undefined;
  /** Options passed to the grpc-js channel (keepalive, message sizes, …). */
  readonly channelOptions?: ChannelOptions | undefined;
}

/**
 * The default transport: one HTTP/2 channel (grpc-js) shared by every service client, so the
 * SDK holds exactly one connection per server.
 */
export function createGrpcTransport(options: GrpcTransportOptions): Transport {
  const credentials = options.credentials ?? (options.address.startsWith("https://") ? ChannelCredentials.createSsl() : undefined);
  const channel = createChannel(options.address, credentials, {
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
