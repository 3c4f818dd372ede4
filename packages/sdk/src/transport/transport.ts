import type { CallOptions, ClientMiddleware } from "nice-grpc-common";

/**
 * Per-call options every SDK call accepts on top of nice-grpc's `signal` and `metadata`.
 * Kept transport-neutral so a grpc-web transport can honour the same options.
 */
export interface ContinuityCallOptionsExt {
  /** Absolute deadline of the call; wins over `timeoutMs` and the client default. */
  readonly deadline?: Date | undefined;
  /** Deadline relative to the start of the call, in milliseconds. */
  readonly timeoutMs?: number | undefined;
}

/** The options of one SDK call: cancellation, metadata and deadline. */
export type ContinuityCallOptions = CallOptions & ContinuityCallOptionsExt;

/**
 * The part of a generated service definition a transport needs. Structural, so that the
 * generated ts-proto definitions fit without tying this interface to one gRPC library.
 */
export interface ServiceDefinitionLike {
  /** Short service name, e.g. `StreamService`. */
  readonly name: string;
  /** Fully qualified name, e.g. `continuity.v1.StreamService`. */
  readonly fullName: string;
  /** The service's methods, keyed by lowerCamelCase method name. */
  readonly methods: object;
}

/**
 * The seam between the SDK and the wire. The SDK builds its middleware chain (deadline,
 * retry, auth, protocol version, error details) once and hands it to the transport, which
 * owns the connection. Today there is one implementation over HTTP/2 (`createGrpcTransport`);
 * a grpc-web transport for browsers can be added later without changing any SDK API,
 * because middleware and call options come from transport-neutral `nice-grpc-common`.
 */
export interface Transport {
  /**
   * Creates a client for one service whose calls run through `middleware`. The returned
   * object must have one method per entry of `definition.methods`, with nice-grpc's call
   * shapes (promise for unary, async iterable for server streaming).
   */
  createClient(definition: ServiceDefinitionLike, middleware: ClientMiddleware<ContinuityCallOptionsExt>): unknown;
  /** Closes the connection; calls in flight fail with CANCELLED or UNAVAILABLE. */
  close(): void;
}
