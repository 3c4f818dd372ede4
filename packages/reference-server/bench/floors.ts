import { Client, Metadata, credentials, type ClientReadableStream } from "@grpc/grpc-js";

// Raw @grpc/grpc-js clients for `pnpm bench`: bytes in, bytes out, no protobuf and no
// middleware on the client side. The floors use them against the echo server; the
// fan-out, memory and wire-size rows use them against the reference server too, so both
// sides pay the same client costs and the bench sees the exact bytes a subscriber receives.

const identity = (bytes: Buffer): Buffer => bytes;
const MAX_MESSAGE = 64 * 1024 * 1024;

/**
 * A raw client on its own HTTP/2 connection: grpc-js shares one connection between clients
 * with equal options, so `connection` makes the options, and so the connection, distinct.
 */
export function rawClient(address: string, connection = 0): Client {
  return new Client(address, credentials.createInsecure(), {
    "grpc.max_receive_message_length": MAX_MESSAGE,
    "grpc.max_send_message_length": MAX_MESSAGE,
    "bench.connection": connection,
  });
}

function metadataOf(token: string | undefined): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

/** One unary call of `path` with `request` as the message bytes. */
export function rawUnary(client: Client, path: string, request: Uint8Array, token?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(path, identity, identity, Buffer.from(request), metadataOf(token), (error, response) =>
      error ? reject(error) : resolve(response ?? Buffer.alloc(0)),
    );
  });
}

/** A server-streaming call of `path` whose messages arrive as their raw bytes. */
export function rawServerStream(client: Client, path: string, request: Uint8Array, token?: string): ClientReadableStream<Buffer> {
  return client.makeServerStreamRequest(path, identity, identity, Buffer.from(request), metadataOf(token));
}

export const ECHO_PATHS = {
  echo: "/bench.Echo/Echo",
  publish: "/bench.Echo/Publish",
  put: "/bench.Echo/Put",
  download: "/bench.Echo/Download",
  subscribe: "/bench.Echo/Subscribe",
} as const;
