import { continuity } from "@continuity/sdk/gen";
import { ChannelCredentials, createChannel, createClientFactory, Metadata, type Channel, type Client } from "nice-grpc";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { ClientError, Status, type CallOptions, type ClientMiddleware, type ClientMiddlewareCall } from "nice-grpc-common";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import { ConformanceFailure } from "./expect.js";
import { createTraceMiddleware, type TraceLog } from "./trace.js";

/** The generated continuity.v1 namespace (messages, enums, service definitions). */
export const v1 = continuity.v1;

/**
 * Raw clients for every service, bound to one access token (or none). They are plain
 * nice-grpc clients over the generated definitions: the suite deliberately does not use the
 * SDK, so that what is tested is the wire and nothing the SDK would paper over.
 */
export interface Clients {
  readonly streams: Client<typeof v1.StreamServiceDefinition>;
  readonly checkpoints: Client<typeof v1.CheckpointServiceDefinition>;
  readonly subscriptions: Client<typeof v1.SubscriptionServiceDefinition>;
  readonly tokens: Client<typeof v1.TokenServiceDefinition>;
  readonly subjects: Client<typeof v1.SubjectServiceDefinition>;
  readonly devices: Client<typeof v1.DeviceServiceDefinition>;
  readonly consent: Client<typeof v1.ConsentServiceDefinition>;
  readonly serverInfo: Client<typeof v1.ServerInfoServiceDefinition>;
  readonly portability: Client<typeof v1.PortabilityServiceDefinition>;
}

/** Default time a unary or client-streaming call may take before the case fails. */
export const DEFAULT_CALL_TIMEOUT_MS = 10_000;

/**
 * Bounds every non-server-streaming call, because grpc-js can otherwise wait forever and a
 * hung server must show up as a failing case, not a hung suite.
 */
function createTimeoutMiddleware(caseSignal: AbortSignal, timeoutMs: number): ClientMiddleware {
  return async function* timeoutMiddleware<Request, Response>(call: ClientMiddlewareCall<Request, Response>, options: CallOptions) {
    const base = options.signal ?? caseSignal;
    if (call.responseStream) {
      return yield* call.next(call.request, { ...options, signal: base });
    }
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      return yield* call.next(call.request, { ...options, signal: AbortSignal.any([base, timeout]) });
    } catch (error) {
      if (timeout.aborted && !base.aborted) {
        throw new ConformanceFailure(`${call.method.path} did not complete within ${timeoutMs} ms`);
      }
      throw error;
    }
  };
}

/**
 * ERR-001: the google.rpc.Status in `grpc-status-details-bin` must repeat the call's own code
 * and message. Decoded by hand (fields 1 code, 2 message) so the check does not depend on
 * any details library agreeing with itself.
 */
function createStatusDetailsMiddleware(): ClientMiddleware {
  return async function* statusDetailsMiddleware<Request, Response>(call: ClientMiddlewareCall<Request, Response>, options: CallOptions) {
    let details: Buffer | undefined;
    const withTrailer: CallOptions = {
      ...options,
      onTrailer(trailer) {
        const raw = trailer.get("grpc-status-details-bin");
        if (raw instanceof Uint8Array) details = Buffer.from(raw);
        options.onTrailer?.(trailer);
      },
    };
    try {
      return yield* call.next(call.request, withTrailer);
    } catch (error) {
      if (error instanceof ClientError && details !== undefined) {
        const reader = new BinaryReader(details);
        let code = 0;
        let message = "";
        while (reader.pos < reader.len) {
          const [field, wireType] = reader.tag();
          if (field === 1) code = reader.int32();
          else if (field === 2) message = reader.string();
          else reader.skip(wireType);
        }
        if (code !== error.code || message !== error.details) {
          throw new ConformanceFailure(`${call.method.path}: google.rpc.Status in grpc-status-details-bin says ${Status[code]} "${message}", but the call ended ${Status[error.code]} "${error.details}"`);
        }
      }
      throw error;
    }
  };
}

/** A channel plus a way to build token-bound clients on it, all traced into one log. */
export interface ClientPool {
  readonly channel: Channel;
  clients(token?: string): Clients;
  close(): void;
}

/** Opens a channel to `address` whose clients record into `log` and stop with `signal`. */
export function createClientPool(address: string, log: TraceLog, signal: AbortSignal, credentials = ChannelCredentials.createInsecure()): ClientPool {
  // No client-side size caps: a page of deltas at max_page_size or a batch at max_batch_bytes
  // may exceed grpc-js's 4 MiB default, and only the server's limits are under test.
  const channel = createChannel(address, credentials, {
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
  });
  const factory = createClientFactory()
    .use(errorDetailsClientMiddleware)
    .use(createStatusDetailsMiddleware())
    .use(createTimeoutMiddleware(signal, DEFAULT_CALL_TIMEOUT_MS))
    .use(createTraceMiddleware(log));
  return {
    channel,
    clients(token) {
      const metadata = new Metadata();
      if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
      const defaults = { "*": { metadata, signal } };
      return {
        streams: factory.create(v1.StreamServiceDefinition, channel, defaults),
        checkpoints: factory.create(v1.CheckpointServiceDefinition, channel, defaults),
        subscriptions: factory.create(v1.SubscriptionServiceDefinition, channel, defaults),
        tokens: factory.create(v1.TokenServiceDefinition, channel, defaults),
        subjects: factory.create(v1.SubjectServiceDefinition, channel, defaults),
        devices: factory.create(v1.DeviceServiceDefinition, channel, defaults),
        consent: factory.create(v1.ConsentServiceDefinition, channel, defaults),
        serverInfo: factory.create(v1.ServerInfoServiceDefinition, channel, defaults),
        portability: factory.create(v1.PortabilityServiceDefinition, channel, defaults),
      };
    },
    close() {
      channel.close();
    },
  };
}
