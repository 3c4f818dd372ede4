import type { ChannelCredentials, ChannelOptions } from "@grpc/grpc-js";
import { composeClientMiddleware, Status, type ClientMiddleware } from "nice-grpc-common";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import type { AccessToken, TokenProvider, TokenRequestContext } from "../auth/token-provider.js";
import { CheckpointServiceDefinition, type CheckpointServiceClient } from "../gen/continuity/v1/checkpoint_service.js";
import { ConsentServiceDefinition, type ConsentServiceClient } from "../gen/continuity/v1/consent_service.js";
import { DeviceServiceDefinition, type DeviceServiceClient } from "../gen/continuity/v1/device_service.js";
import { PortabilityServiceDefinition, type PortabilityServiceClient } from "../gen/continuity/v1/portability_service.js";
import { ServerInfoServiceDefinition, type ServerInfoServiceClient } from "../gen/continuity/v1/server_info_service.js";
import { StreamServiceDefinition, type StreamServiceClient } from "../gen/continuity/v1/stream_service.js";
import { SubjectServiceDefinition, type SubjectServiceClient } from "../gen/continuity/v1/subject_service.js";
import { SubscriptionServiceDefinition, type SubscriptionServiceClient } from "../gen/continuity/v1/subscription_service.js";
import { TokenServiceDefinition, type TokenServiceClient } from "../gen/continuity/v1/token_service.js";
import { ContinuityError } from "../errors/continuity-error.js";
import { createGrpcTransport } from "../transport/grpc-transport.js";
import type { ContinuityCallOptionsExt, ServiceDefinitionLike, Transport } from "../transport/transport.js";
import { createAuthMiddleware } from "./auth-middleware.js";
import { isLongLived, isSafeToRetry, needsNoToken } from "./call-policy.js";
import { anchorDeadlineMiddleware, createDeadlineMiddleware, linkDeadline } from "./deadline-middleware.js";
import { errorMiddleware } from "./error-middleware.js";
import { createRetryMiddleware, type RetryOptions } from "./retry-middleware.js";

/** Options of `createContinuityClient`. */
export interface ContinuityClientOptions {
  /** Server address: `host:port`, or with `http://` / `https://` to choose plaintext or TLS. Ignored when `transport` is given. */
  readonly address?: string | undefined;
  /** Where bearer tokens come from; usually `createAssertionTokenProvider`. */
  readonly tokenProvider: TokenProvider;
  /**
   * Deadline of each attempt of a call that sets no `deadline`/`timeoutMs` of its own, and of
   * one token exchange (the assertion included), in milliseconds. Default 10 000.
   * Subscriptions have none. A call's own `timeoutMs` or `deadline` covers all its retries.
   */
  readonly deadlineMs?: number | undefined;
  /** Retry policy of safe calls (reads and appends). */
  readonly retry?: RetryOptions | undefined;
  /** grpc-js channel credentials, for the default transport. */
  readonly credentials?: ChannelCredentials | undefined;
  /** grpc-js channel options, for the default transport. */
  readonly channelOptions?: ChannelOptions | undefined;
  /** A transport to use instead of the default HTTP/2 one (e.g. grpc-web, or a test double). */
  readonly transport?: Transport | undefined;
}

/** Who the client acts for, as the server said when it issued the current token. */
export interface ClientSession {
  /** `subjects/{subject}`. */
  readonly subject: string;
  /** `platforms/{platform}`, when known. */
  readonly platform: string | undefined;
  /** `subjects/{subject}/devices/{device}`, when the token is device-bound. */
  readonly device: string | undefined;
  /** The device id alone (the last segment of `device`). */
  readonly deviceId: string | undefined;
}

/**
 * The low-level client: one typed nice-grpc client per service of `continuity.v1`, sharing
 * one connection and one middleware chain. Every call carries a deadline, honours
 * `signal`, sends the protocol version and a fresh bearer token, is retried only when
 * that is safe, and rejects with `ContinuityError`.
 */
export interface ContinuityClient {
  /** StreamService: streams, deltas, snapshots. */
  readonly streams: StreamServiceClient<ContinuityCallOptionsExt>;
  /** SubscriptionService: the live feed of the subject. */
  readonly subscriptions: SubscriptionServiceClient<ContinuityCallOptionsExt>;
  /** CheckpointService: checkpoints and handoffs. */
  readonly checkpoints: CheckpointServiceClient<ContinuityCallOptionsExt>;
  /** TokenService: token exchange (the token provider uses it). */
  readonly tokens: TokenServiceClient<ContinuityCallOptionsExt>;
  /** SubjectService: the subject, account links and link codes. */
  readonly subjects: SubjectServiceClient<ContinuityCallOptionsExt>;
  /** DeviceService: the subject's devices. */
  readonly devices: DeviceServiceClient<ContinuityCallOptionsExt>;
  /** ConsentService: grants between platforms. */
  readonly consent: ConsentServiceClient<ContinuityCallOptionsExt>;
  /** ServerInfoService: versions, profiles, limits. */
  readonly serverInfo: ServerInfoServiceClient<ContinuityCallOptionsExt>;
  /** PortabilityService: export, import, migration. */
  readonly portability: PortabilityServiceClient<ContinuityCallOptionsExt>;
  /**
   * The subject and device the client acts for. Gets a token first if none was used yet;
   * fails with FAILED_PRECONDITION when the token provider does not say (a static token).
   */
  session(options?: { signal?: AbortSignal }): Promise<ClientSession>;
  /** Closes the connection. Calls in flight fail. */
  close(): void;
}

/**
 * Creates the low-level client.
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
  const transport =
    options.transport ??
    createGrpcTransport({
      address: requireAddress(options.address),
      credentials: options.credentials,
      channelOptions: options.channelOptions,
    });
  const deadlineMs = options.deadlineMs ?? 10_000;
  let lastToken: AccessToken | undefined;
  // Exchanges run on the same connection and chain (deadline, error details) but carry no
  // token; `tokens` is assigned below, before any call can reach this.
  const exchangeToken: TokenRequestContext["exchangeToken"] = (params, signal) =>
    tokens.exchangeToken(
      {
        grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
        subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
        ...params,
      },
      signal === undefined ? {} : { signal },
    );

  // Listed innermost first, as nice-grpc composes them: details are decoded before anything
  // inspects an error, auth retries inside one deadline, retries get a fresh default deadline
  // each, but a caller's `timeoutMs` is fixed to one absolute deadline before the retry layer,
  // so it bounds the whole call rather than each attempt.
  const chain: ClientMiddleware<ContinuityCallOptionsExt>[] = [
    errorDetailsClientMiddleware as ClientMiddleware<ContinuityCallOptionsExt>,
    createAuthMiddleware({
      tokenProvider: options.tokenProvider,
      needsNoToken,
      exchangeToken,
      exchangeTimeoutMs: deadlineMs,
      onToken: (token) => {
        lastToken = token;
      },
    }),
    createDeadlineMiddleware(deadlineMs, isLongLived),
    createRetryMiddleware(isSafeToRetry, options.retry),
    anchorDeadlineMiddleware,
    errorMiddleware,
  ];
  const middleware = chain.reduce((inner, outer) => composeClientMiddleware(inner, outer));
  const create = <T>(definition: ServiceDefinitionLike): T => transport.createClient(definition, middleware) as T;

  const tokens = create<TokenServiceClient<ContinuityCallOptionsExt>>(TokenServiceDefinition);
  const serverInfo = create<ServerInfoServiceClient<ContinuityCallOptionsExt>>(ServerInfoServiceDefinition);

  return {
    streams: create(StreamServiceDefinition),
    subscriptions: create(SubscriptionServiceDefinition),
    checkpoints: create(CheckpointServiceDefinition),
    tokens,
    subjects: create(SubjectServiceDefinition),
    devices: create(DeviceServiceDefinition),
    consent: create(ConsentServiceDefinition),
    serverInfo,
    portability: create(PortabilityServiceDefinition),
    async session(sessionOptions = {}) {
      if (lastToken === undefined) {
        lastToken = await withDeadline(deadlineMs, sessionOptions.signal, (signal) =>
          options.tokenProvider.getToken({ signal, forceRefresh: false, exchangeTimeoutMs: deadlineMs, exchangeToken }),
        );
      }
      const { subject, platform, device } = lastToken;
      if (subject === undefined || subject === "") {
        throw new ContinuityError({
          code: Status.FAILED_PRECONDITION,
          message: "The token provider did not say which subject the token is for; pass the subject explicitly",
        });
      }
      return { subject, platform, device, deviceId: device?.split("/").at(-1) };
    },
    close: () => transport.close(),
  };
}

/**
 * Runs `work` under the client's deadline as well as the caller's signal, the way every RPC
 * runs, and rejects with a `ContinuityError` whatever a token provider throws.
 */
async function withDeadline<T>(deadlineMs: number, signal: AbortSignal | undefined, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = linkDeadline(signal, deadlineMs);
  try {
    return await work(deadline.signal);
  } catch (error) {
    if (deadline.expired()) {
      throw new ContinuityError({ code: Status.DEADLINE_EXCEEDED, message: `Deadline of ${deadlineMs} ms exceeded while getting a token`, cause: error });
    }
    throw ContinuityError.from(error);
  } finally {
    deadline.dispose();
  }
}

function requireAddress(address: string | undefined): string {
  if (address === undefined || address === "") {
    throw new ContinuityError({ code: Status.INVALID_ARGUMENT, message: "createContinuityClient needs `address` or `transport`" });
  }
  return address;
}
