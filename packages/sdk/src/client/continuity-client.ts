import type { ChannelCredentials, ChannelOptions } from "@grpc/grpc-js";
import { composeClientMiddleware, Status, type CallOptions, type ClientMiddleware, type ClientMiddlewareCall } from "nice-grpc-common";
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
import { ContinuityError, hasReason } from "../errors/continuity-error.js";
import { createEmitter, type EventSource } from "../stream/emitter.js";
import { movedAddress, parseServerAddress, requireTls, type ServerAddress } from "../transport/address.js";
import type { ClientTlsOptions } from "../transport/grpc-transport.js";
import type { ContinuityCallOptionsExt, ServiceDefinitionLike, Transport } from "../transport/transport.js";
import { createAuthMiddleware } from "./auth-middleware.js";
import { isLongLived, isSafeToRetry, needsNoToken } from "./call-policy.js";
import { createCloseMiddleware } from "./close-middleware.js";
import { anchorDeadlineMiddleware, createDeadlineMiddleware, linkDeadline } from "./deadline-middleware.js";
import { errorMiddleware } from "./error-middleware.js";
import { createMovedMiddleware } from "./moved-middleware.js";
import { createRetryMiddleware, type RetryOptions } from "./retry-middleware.js";

/** Options of `createContinuityClient`. */
export interface ContinuityClientOptions {
  /**
   * Server address: `https://host[:port]` for TLS (port 443 by default), `http://host[:port]`
   * for plaintext. A bare `host:port` is plaintext and accepted only for a loopback host
   * (`localhost`, `127.0.0.1`, `[::1]`) or together with `credentials` or `tls`; anything else fails
   * with INVALID_ARGUMENT / `ADDRESS_INSECURE` rather than send tokens in the clear without
   * saying so. Ignored when `transport` is given.
   */
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
  /**
   * TLS whatever the address says, with your own CA (a private or self-signed server
   * certificate) or a client certificate (a server that requires one): a bare `host:port`
   * then means TLS, and `http://` is refused as a contradiction. `true`: TLS with the
   * system's trusted roots, as `https://` alone does.
   */
  readonly tls?: true | ClientTlsOptions | undefined;
  /** grpc-js channel credentials, for the default transport; they win over `tls` and the scheme. */
  readonly credentials?: ChannelCredentials | undefined;
  /** grpc-js channel options, for the default transport. */
  readonly channelOptions?: ChannelOptions | undefined;
  /**
   * A transport to use instead of the default HTTP/2 one (e.g. grpc-web, or a test double).
   * A client on a transport of its own cannot follow `SUBJECT_MOVED` to another address: the
   * error reaches the caller.
   */
  readonly transport?: Transport | undefined;
}

/** Events of a client. */
export interface ClientEvents {
  /**
   * The subject moved to another server (FAILED_PRECONDITION / `SUBJECT_MOVED`) and the
   * client now talks to that server. Emitted once per move, before the call that met the
   * move fails. Persist `address` if the app keeps its server address between runs.
   */
  moved: SubjectMovedEvent;
}

/** Payload of `ClientEvents.moved`. */
export interface SubjectMovedEvent {
  /** The address the client dials from now on: the target with the scheme of the old address. */
  readonly address: string;
  /** The address it dialed before. */
  readonly previousAddress: string;
  /** `subjects/{subject}`: the subject's name on the new server. */
  readonly subject: string;
  /** The subject's name on the old server, when the client had learnt it. */
  readonly previousSubject: string | undefined;
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
export interface ContinuityClient extends EventSource<ClientEvents> {
  /** The address the client dials now (it changes when the subject moves); undefined on a transport of the caller's. */
  readonly address: string | undefined;
  /**
   * Aborted once `close()` is called. Long-lived work on the client — a replica's
   * subscription, a stream handle's flush loop — stops with it.
   */
  readonly closeSignal: AbortSignal;
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
   * The subject and device the client acts for. Gets a token first if none was used yet (or
   * the one used was issued by a server the subject has moved away from); fails with
   * FAILED_PRECONDITION when the token provider does not say (a static token).
   */
  session(options?: { signal?: AbortSignal }): Promise<ClientSession>;
  /**
   * Closes the connection. Calls in flight — a subscription included — fail at once with
   * CANCELLED / `CLIENT_CLOSED`, and so does every later call.
   */
  close(): void;
}

/** How many moves in a row `session()` follows before it gives up (a loop of redirects). */
const MAX_MOVES = 3;

/**
 * How a client reaches an address: a new transport for the first address and for each
 * `SUBJECT_MOVED` target. Node dials grpc-js (`./create-client.ts`), a browser gRPC-web
 * (`./create-web-client.ts`); this file imports neither, so each entry bundles only its own.
 */
export type Dial = (address: ServerAddress, options: ContinuityClientOptions) => Transport;

/** The low-level client over `dial`; each entry's `createContinuityClient` calls it with its own. */
export function createClientWith(dial: Dial, options: ContinuityClientOptions): ContinuityClient {
  const hasCredentials = options.credentials !== undefined || options.tls !== undefined;
  const parsed = options.transport === undefined ? parseServerAddress(requireAddress(options.address), hasCredentials) : undefined;
  let address: ServerAddress | undefined = parsed === undefined || options.tls === undefined ? parsed : requireTls(parsed);
  const connect = (to: ServerAddress): Transport => dial(to, options);
  const deadlineMs = options.deadlineMs ?? 10_000;
  const closeController = new AbortController();
  const emitter = createEmitter<ClientEvents>();
  let lastToken: AccessToken | undefined;
  // Tokens issued by a server the subject moved away from: never sent to the new one.
  const staleTokens = new WeakSet<AccessToken>();
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
  // so it bounds the whole call rather than each attempt. A move is seen once the error is a
  // ContinuityError; closing the client reaches every layer, so it comes last.
  const chainFor = (connection: Connection): ClientMiddleware<ContinuityCallOptionsExt> =>
    [
      errorDetailsClientMiddleware as ClientMiddleware<ContinuityCallOptionsExt>,
      createAuthMiddleware({
        tokenProvider: options.tokenProvider,
        needsNoToken,
        exchangeToken,
        exchangeTimeoutMs: deadlineMs,
        onToken: (token) => {
          lastToken = token;
        },
        isStale: (token) => staleTokens.has(token),
      }),
      createDeadlineMiddleware(deadlineMs, isLongLived),
      createRetryMiddleware(isSafeToRetry, options.retry),
      anchorDeadlineMiddleware,
      errorMiddleware,
      createMovedMiddleware((error) => follow(error, connection)),
      countCalls(connection),
      createCloseMiddleware(closeController.signal),
    ].reduce((inner, outer) => composeClientMiddleware(inner, outer));

  let current = openConnection(options.transport ?? connect(address!));
  function openConnection(transport: Transport): Connection {
    const connection: Connection = { transport, clients: new Map(), inFlight: 0, retired: false, middleware: undefined };
    connection.middleware = chainFor(connection);
    return connection;
  }

  /** Switches to the target of a SUBJECT_MOVED met on `connection`, once per move. */
  function follow(error: ContinuityError, connection: Connection): void {
    // A late answer from a server already left (a call that was in flight) is no news.
    if (connection !== current || closeController.signal.aborted || address === undefined) return;
    const target = error.metadata["target"];
    const subjectName = error.metadata["subject"];
    if (target === undefined || target === "" || subjectName === undefined || subjectName === "") return;
    let next: ServerAddress;
    try {
      next = movedAddress(address, target, hasCredentials);
    } catch {
      // A target the client may not dial: the error reaches the caller unfollowed.
      return;
    }
    const previousAddress = address.text;
    const previousSubject = lastToken?.subject;
    address = next;
    current = openConnection(connect(next));
    // Calls in flight on the old server finish there (their answers still count); its
    // channel closes once they have.
    connection.retired = true;
    if (connection.inFlight === 0) connection.transport.close();
    if (lastToken !== undefined) staleTokens.add(lastToken);
    const subject = subjectName.startsWith("subjects/") ? subjectName : `subjects/${subjectName}`;
    emitter.emit("moved", { address: next.text, previousAddress, subject, previousSubject });
  }

  function countCalls(connection: Connection): ClientMiddleware<ContinuityCallOptionsExt> {
    return async function* countedCall<Request, Response>(
      call: ClientMiddlewareCall<Request, Response>,
      callOptions: CallOptions & Partial<ContinuityCallOptionsExt>,
    ): AsyncGenerator<Response, Response | void, undefined> {
      connection.inFlight += 1;
      try {
        return yield* call.next(call.request, callOptions);
      } finally {
        connection.inFlight -= 1;
        if (connection.retired && connection.inFlight === 0) connection.transport.close();
      }
    };
  }

  // Each service client is a set of functions that look up the current connection per call,
  // so a move switches every holder of `client.streams` (and the like) at once.
  const route = <T>(definition: ServiceDefinitionLike): T => {
    const clientOf = (connection: Connection): Record<string, (...args: unknown[]) => unknown> => {
      let client = connection.clients.get(definition);
      if (client === undefined) {
        client = connection.transport.createClient(definition, connection.middleware!);
        connection.clients.set(definition, client);
      }
      return client as Record<string, (...args: unknown[]) => unknown>;
    };
    return Object.fromEntries(
      Object.keys(definition.methods).map((method) => [method, (...args: unknown[]) => clientOf(current)[method]!(...args)]),
    ) as T;
  };

  const tokens = route<TokenServiceClient<ContinuityCallOptionsExt>>(TokenServiceDefinition);

  return {
    get address() {
      return address?.text;
    },
    closeSignal: closeController.signal,
    streams: route(StreamServiceDefinition),
    subscriptions: route(SubscriptionServiceDefinition),
    checkpoints: route(CheckpointServiceDefinition),
    tokens,
    subjects: route(SubjectServiceDefinition),
    devices: route(DeviceServiceDefinition),
    consent: route(ConsentServiceDefinition),
    serverInfo: route(ServerInfoServiceDefinition),
    portability: route(PortabilityServiceDefinition),
    async session(sessionOptions = {}) {
      for (let moves = 0; lastToken === undefined || staleTokens.has(lastToken); ) {
        const stale = lastToken !== undefined;
        const before = current;
        try {
          lastToken = await withDeadline(deadlineMs, sessionOptions.signal, (signal) =>
            options.tokenProvider.getToken({ signal, forceRefresh: stale, exchangeTimeoutMs: deadlineMs, exchangeToken }),
          );
          break;
        } catch (error) {
          // The exchange met SUBJECT_MOVED and the client followed: exchange on the target.
          moves += 1;
          if (current !== before && hasReason(error, "SUBJECT_MOVED") && moves < MAX_MOVES) continue;
          throw error;
        }
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
    close() {
      if (closeController.signal.aborted) return;
      closeController.abort();
      current.transport.close();
    },
    on: emitter.on,
  };
}

/** One transport and the service clients made on it; a move retires it for the next. */
interface Connection {
  readonly transport: Transport;
  readonly clients: Map<ServiceDefinitionLike, unknown>;
  middleware: ClientMiddleware<ContinuityCallOptionsExt> | undefined;
  /** Calls started on it that have not ended. */
  inFlight: number;
  /** True once the client moved on: the transport closes when its last call ends. */
  retired: boolean;
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
