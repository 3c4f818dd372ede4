import { createWebTransport } from "../transport/web-transport.js";
import { createClientWith, type ContinuityClient, type ContinuityClientOptions } from "./continuity-client.js";

/**
 * Creates the low-level client in a browser: every call is gRPC-web over `fetch` to
 * `address`, the server's gRPC-web endpoint (the reference server's `--grpc-web-port`).
 * `credentials`, `channelOptions` and the files of `tls` are grpc-js settings and mean nothing
 * here (the browser decides whom to trust); `tls: true` or `https://` means HTTPS. A subject
 * that moves is followed to the target with the scheme of `address`.
 *
 * @example
 * ```ts
 * const client = createContinuityClient({
 *   address: "https://continuity.example.com",
 *   tokenProvider: createAssertionTokenProvider({ deviceId, getAssertion: () => fetchAssertionFromMyBackend() }),
 * });
 * const replica = await createReplica(client, { store: myBrowserQueueStore });
 * ```
 */
export function createContinuityClient(options: ContinuityClientOptions): ContinuityClient {
  return createClientWith((to) => createWebTransport({ address: to.text }), options);
}
