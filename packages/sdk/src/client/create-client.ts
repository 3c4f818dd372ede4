import { createGrpcTransport } from "../transport/grpc-transport.js";
import { createClientWith, type ContinuityClient, type ContinuityClientOptions } from "./continuity-client.js";

/**
 * Creates the low-level client. In Node it dials HTTP/2 with grpc-js; the browser entry of
 * the package has the same function over gRPC-web.
 *
 * @example
 * ```ts
 * const client = createContinuityClient({
 *   address: "127.0.0.1:50051",
 *   tokenProvider: createAssertionTokenProvider({ deviceId: "laptop-1", getAssertion }),
 * });
 * const { subject } = await client.session();
 * const { streams } = await client.streams.listStreams({ parent: subject }, { timeoutMs: 2_000 });
 * ```
 */
export function createContinuityClient(options: ContinuityClientOptions): ContinuityClient {
  return createClientWith(
    (to) => createGrpcTransport({ address: to.text, credentials: options.credentials, tls: options.tls, channelOptions: options.channelOptions }),
    options,
  );
}
