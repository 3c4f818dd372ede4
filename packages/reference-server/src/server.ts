import type { ServerCredentials } from "@grpc/grpc-js";
import { createServer, type Server } from "nice-grpc";
import { errorDetailsServerMiddleware } from "nice-grpc-error-details";
import type { JSONWebKeySet } from "jose";
import type { Logger } from "pino";
import { continuity } from "@continuity/sdk/gen";
import { createJsonHeads } from "./services/json-heads.js";
import type { AuthCallContextExt } from "./auth/context.js";
import { createAuthMiddleware } from "./auth/middleware.js";
import type { TokenAuthority } from "./auth/token-authority.js";
import { createErrorMiddleware } from "./errors.js";
import { createEventHub } from "./events/event-hub.js";
import {
  connectionServerOptions,
  DEFAULT_CONNECTION_LIMITS,
  guardConnections,
  type ConnectionGuard,
  type ConnectionLimits,
} from "./ops/connection-guard.js";
import { addHealthService } from "./ops/health.js";
import { createLoggingMiddleware } from "./ops/logging-middleware.js";
import { createStreamingFastPath } from "./ops/streaming-fast-path.js";
import { createMetricsMiddleware } from "./ops/metrics-middleware.js";
import type { ServerMetrics } from "./ops/metrics.js";
import { addReflection } from "./ops/reflection.js";
import { createCheckpointService } from "./services/checkpoint-service.js";
import { createConsentService } from "./services/consent-service.js";
import {
  DEFAULT_LIMITS,
  DEFAULT_SUBSCRIPTION_SETTINGS,
  type ServerLimits,
  type ServiceDeps,
  type SubscriptionSettings,
} from "./services/deps.js";
import { createDeviceService } from "./services/device-service.js";
import { newOpaqueId } from "./services/ids.js";
import { createMac, createPageTokens } from "./services/paging.js";
import { compactForRetention } from "./services/retention.js";
import { createSourcePolicy } from "./services/portability/source-policy.js";
import { createPortabilityService, PortabilityServiceRawDefinition, trustedBundleKeys, type TransferSettings } from "./services/portability-service.js";
import { createMigrationRunner } from "./services/portability/migration.js";
import { createSubjectGate } from "./services/portability/subject-gate.js";
import { createProfileGate } from "./services/profile-gate.js";
import { CLAIMED_PROFILES, createServerInfoService } from "./services/server-info-service.js";
import { createSubscriptionStallInterceptor } from "./services/subscription-stall.js";
import { createStreamService } from "./services/stream-service.js";
import { createSubjectService } from "./services/subject-service.js";
import { createSubscriptionService, subscriptionServiceDefinition } from "./services/subscription-service.js";
import { createTokenService } from "./services/token-service.js";
import type { Store } from "./store/types.js";
import { startGrpcWebBridge, type GrpcWebBridge, type GrpcWebMethod } from "./web/grpc-web-bridge.js";

const v1 = continuity.v1;

/** How long a source keeps answering SUBJECT_MOVED for a subject that moved away (PORT-032). */
export const DEFAULT_MOVED_RETENTION_MS = 30 * 24 * 3600 * 1000;

/** `name/version` reported in ServerInfo.implementation. */
export const IMPLEMENTATION = "continuity-reference-server/0.1.0";

/** Options of {@link createContinuityServer}. */
export interface ContinuityServerOptions {
  readonly store: Store;
  readonly tokens: TokenAuthority;
  readonly logger: Logger;
  readonly metrics: ServerMetrics;
  /** Injectable clock for tests; default `() => new Date()`. */
  readonly clock?: () => Date;
  /** Overrides of {@link DEFAULT_LIMITS}. */
  readonly limits?: Partial<ServerLimits>;
  /** Overrides of {@link DEFAULT_SUBSCRIPTION_SETTINGS} (tests make the queue tiny). */
  readonly subscriptions?: Partial<SubscriptionSettings>;
  /**
   * Keep at most this many deltas below each stream's head; older ones are compacted by the
   * periodic maintenance task. Undefined keeps all history.
   */
  readonly retainDeltas?: number;
  /** Events kept per subject for resuming subscriptions; default 10000. */
  readonly eventRetention?: number;
  /** Period of maintenance (handoff expiry); default 1000 ms. 0 disables all maintenance. */
  readonly maintenanceIntervalMs?: number;
  /** Period of the heavier sweeps (event pruning, retention); default 60000 ms. */
  readonly sweepIntervalMs?: number;
  /** How long `shutdown()` lets calls drain before cutting them; default 5000 ms. */
  readonly shutdownGraceMs?: number;
  /** Overrides of {@link DEFAULT_CONNECTION_LIMITS}: connection cap, idle and handshake timeouts, streams per connection. */
  readonly connections?: Partial<ConnectionLimits>;
  /**
   * The address other servers and clients reach this one at, sent as SUBJECT_MOVED `target`
   * when a subject migrates here. Default: the address `listen` bound.
   */
  readonly publicAddress?: string;
  /**
   * How long this server's claim to run a migration lasts unless renewed; default 15 s. A
   * migration whose runner died is ended as interrupted by a server of the store this long
   * after (see MigrationSettings.leaseMs).
   */
  readonly migrationLeaseMs?: number;
  /** How long a moved subject keeps being answered SUBJECT_MOVED before it is erased; default 30 days. */
  readonly movedRetentionMs?: number;
  /** Overrides of the source side of a switch (tests make them short). */
  readonly transfer?: Partial<TransferSettings>;
  /**
   * Keys, besides this server's own, whose bundles may bring account links on import or
   * migration. Links from any other bundle are skipped: a link decides whose subject a
   * person's sign-in lands in, so only an exporter the operator trusts may create one.
   */
  readonly trustedBundleKeys?: JSONWebKeySet;
  /**
   * PEM CA certificates an `https://` migration source must chain to (PORT-040); default:
   * the system's roots.
   */
  readonly migrationCa?: Buffer;
  /**
   * Address ranges (`10.0.0.0/8`, `::1`) a migration source may be dialed at besides public
   * unicast addresses (PORT-041); default none.
   */
  readonly migrationSources?: readonly string[];
}

/** A composed server, not yet listening. */
export interface ContinuityServer {
  readonly server: Server;
  /** The dependencies every service was built with (tests inspect them). */
  readonly deps: ServiceDeps;
  /** Binds `host:port` (port 0 picks one) and resolves to the bound `host:port`. Default credentials: plaintext. */
  listen(address: string, credentials?: ServerCredentials): Promise<string>;
  /**
   * After `listen`, also serves gRPC-web on `address` (HTTP/1.1 and h2c) for browsers, with
   * CORS for `corsOrigins` (`*` for any); resolves to the bound `host:port`. Calls go through
   * the gRPC port, so they meet the same middleware and limits.
   */
  listenGrpcWeb(
    address: string,
    web?: { readonly corsOrigins?: readonly string[]; readonly tls?: { readonly cert: Buffer; readonly key: Buffer } | undefined },
  ): Promise<string>;
  /**
   * Stops serving: health turns NOT_SERVING, live subscriptions end with UNAVAILABLE /
   * SHUTTING_DOWN, in-flight unary calls finish. Does not close the store (its owner does).
   */
  shutdown(): Promise<void>;
}

/**
 * Builds the reference server: every continuity.v1 service, the auth middleware, error
 * mapping, logging and metrics, health and reflection.
 *
 * Middleware order, outermost first: error details (serializes rich errors into trailers) →
 * logging → metrics → error mapping (unexpected exceptions become INTERNAL) → profile gate
 * (GEN-003) → auth.
 */
export async function createContinuityServer(options: ContinuityServerOptions): Promise<ContinuityServer> {
  const { store, tokens, logger, metrics } = options;
  const clock = options.clock ?? (() => new Date());
  const shutdownController = new AbortController();
  const events = createEventHub(store);
  // Read once: the secret lives with the data and does not change while the store is open.
  const mac = createMac(await store.getInstanceSecret());
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const deps: ServiceDeps = {
    store,
    // Room for two states at the bound: one large stream never reloads because of another.
    jsonHeads: createJsonHeads(store, 2 * limits.maxSnapshotBytes),
    tokens,
    limits,
    subscriptions: { ...DEFAULT_SUBSCRIPTION_SETTINGS, ...options.subscriptions },
    events,
    pageTokens: createPageTokens(mac),
    mac,
    epoch: await store.getEpoch(),
    implementation: IMPLEMENTATION,
    clock,
    newId: newOpaqueId,
    logger,
    metrics,
    shutdownSignal: shutdownController.signal,
  };

  const gate = createSubjectGate(store);
  // A migration this server was running before it stopped has no job any more (PORT-030:
  // GetMigration must reach an end state); the records it copied are skipped by the next one.
  const interrupted = await store.failInterruptedMigrations(MIGRATION_INTERRUPTED, clock());
  if (interrupted > 0) logger.warn({ migrations: interrupted }, "migrations interrupted by a restart were marked failed");
  let boundAddress = "";
  const sourcePolicy = createSourcePolicy(options.migrationSources);
  const migrations = createMigrationRunner(deps, {
    inStepDeltas: 64,
    maxCatchUpRounds: 20,
    publicAddress: () => options.publicAddress ?? boundAddress,
    trustedKeys: trustedBundleKeys(deps, options.trustedBundleKeys),
    ...(options.migrationCa === undefined ? {} : { sourceCa: options.migrationCa }),
    sourcePolicy,
    leaseMs: options.migrationLeaseMs ?? DEFAULT_MIGRATION_LEASE_MS,
  });

  // LIMIT-011: a full batch (or chunk) plus protobuf framing must fit one message.
  const maxMessageBytes = Math.max(deps.limits.maxBatchBytes, deps.limits.maxChunkBytes) + 1024 * 1024;
  const connectionLimits: ConnectionLimits = { ...DEFAULT_CONNECTION_LIMITS, ...options.connections };
  const fastPath = createStreamingFastPath();
  const server = createServer({
    "grpc.max_receive_message_length": maxMessageBytes,
    ...connectionServerOptions(connectionLimits),
    // SUB-034: a subscriber that stops reading is cut within its stall time.
    interceptors: [createSubscriptionStallInterceptor(deps.subscriptions.stallTimeoutMs)],
  })
    // A streamed response's messages go from the handler straight to here, past the layers
    // below, which see only the call's start and outcome (ops/streaming-fast-path.ts).
    .use(fastPath.outer)
    .use(errorDetailsServerMiddleware)
    .use(createLoggingMiddleware({ logger }))
    .use(createMetricsMiddleware(metrics))
    .use(
      createErrorMiddleware({
        onUnexpected: (error, method) => logger.error({ err: error, method }, "unexpected error answered as INTERNAL"),
      }),
    )
    // ERR-010: authentication is judged before the profile (an unauthenticated caller learns
    // nothing else first); the subject gate holds writes during a switch and answers
    // SUBJECT_MOVED once a subject has moved (PORT-032, PORT-033).
    .use(createAuthMiddleware(deps))
    .use(createProfileGate(CLAIMED_PROFILES))
    .use(gate.middleware)
    .use(fastPath.inner);

  const withAuth = server as unknown as Server<AuthCallContextExt>;
  withAuth.add(v1.TokenServiceDefinition, createTokenService(deps));
  withAuth.add(v1.SubjectServiceDefinition, createSubjectService(deps));
  withAuth.add(v1.DeviceServiceDefinition, createDeviceService(deps));
  withAuth.add(v1.ConsentServiceDefinition, createConsentService(deps));
  withAuth.add(v1.StreamServiceDefinition, createStreamService(deps));
  withAuth.add(v1.CheckpointServiceDefinition, createCheckpointService(deps));
  withAuth.add(subscriptionServiceDefinition(), createSubscriptionService(deps));
  withAuth.add(PortabilityServiceRawDefinition, createPortabilityService(deps, { gate, migrations, sourcePolicy, ...(options.transfer === undefined ? {} : { transfer: options.transfer }), ...(options.trustedBundleKeys === undefined ? {} : { trustedBundleKeys: options.trustedBundleKeys }) }));
  withAuth.add(v1.ServerInfoServiceDefinition, createServerInfoService(deps));

  const serviceNames = [
    v1.TokenServiceDefinition,
    v1.SubjectServiceDefinition,
    v1.DeviceServiceDefinition,
    v1.ConsentServiceDefinition,
    v1.StreamServiceDefinition,
    v1.CheckpointServiceDefinition,
    v1.SubscriptionServiceDefinition,
    v1.PortabilityServiceDefinition,
    v1.ServerInfoServiceDefinition,
  ].map((d) => d.fullName);
  const health = addHealthService(server, serviceNames);
  addReflection(server, [...serviceNames, "grpc.health.v1.Health"]);

  const maintenance = startMaintenance(deps, options);

  let listening = false;
  let connectionGuard: ConnectionGuard | undefined;
  let grpcWeb: GrpcWebBridge | undefined;
  let listenedWithTls = false;
  return {
    server,
    deps,
    async listen(address, credentials) {
      const port = await server.listen(address, credentials);
      listenedWithTls = credentials?._isSecure() ?? false;
      boundAddress = `${address.slice(0, address.lastIndexOf(":"))}:${port}`;
      connectionGuard = await guardConnections(boundAddress, connectionLimits, (reason) => metrics.recordConnectionClosed(reason));
      listening = true;
      health.setServing();
      const host = address.slice(0, address.lastIndexOf(":"));
      return `${host}:${port}`;
    },
    async listenGrpcWeb(address, web = {}) {
      if (!listening || grpcWeb !== undefined) throw new Error("listenGrpcWeb needs a listening server, once");
      const port = boundAddress.slice(boundAddress.lastIndexOf(":") + 1);
      const host = boundAddress.slice(0, boundAddress.lastIndexOf(":"));
      grpcWeb = await startGrpcWebBridge({
        listen: address,
        upstream: `${host === "0.0.0.0" ? "127.0.0.1" : host === "[::]" ? "[::1]" : host}:${port}`,
        upstreamTls: listenedWithTls,
        tls: web.tls,
        methods: grpcWebMethods(),
        corsOrigins: web.corsOrigins ?? [],
        maxMessageBytes,
        maxCalls: connectionLimits.maxStreamsPerConnection,
        maxConnections: connectionLimits.maxConnections,
      });
      return grpcWeb.address;
    },
    async shutdown() {
      health.setShuttingDown();
      await grpcWeb?.close();
      maintenance.stop();
      migrations.stopAll();
      shutdownController.abort();
      events.close();
      connectionGuard?.close();
      // Held heads serve the calls still in flight; a state the storage rule made due is
      // written before the owner closes the store.
      const releaseHeads = async () => {
        await deps.jsonHeads.idle();
        deps.jsonHeads.close();
      };
      if (!listening) {
        server.forceShutdown();
        await releaseHeads();
        return;
      }
      // A subscriber that stopped reading holds its call open while the server waits to
      // write; after a grace period such calls are cut rather than holding shutdown forever.
      let timer: NodeJS.Timeout | undefined;
      const grace = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), options.shutdownGraceMs ?? 5000);
      });
      const outcome = await Promise.race([server.shutdown().then(() => "done" as const), grace]);
      clearTimeout(timer);
      if (outcome === "timeout") server.forceShutdown();
      await releaseHeads();
    },
  };
}

/** Every continuity.v1 method by path, with its streaming shape, for the gRPC-web bridge. */
function grpcWebMethods(): Map<string, GrpcWebMethod> {
  const methods = new Map<string, GrpcWebMethod>();
  for (const definition of Object.values(v1)) {
    if (typeof definition !== "object" || definition === null || !("fullName" in definition) || !("methods" in definition)) continue;
    const { fullName, methods: byName } = definition as { fullName: string; methods: Record<string, GrpcWebMethod & { name: string }> };
    for (const method of Object.values(byName)) methods.set(`/${fullName}/${method.name}`, method);
  }
  return methods;
}

/**
 * The periodic housekeeping a server does on its own: expire unanswered handoffs (so their
 * subscribers hear about it), bound each subject's event log, and enforce delta retention.
 * One failing pass is logged and the next one tries again.
 */
/** Default of {@link ContinuityServerOptions.migrationLeaseMs}. */
export const DEFAULT_MIGRATION_LEASE_MS = 15_000;

/** `Migration.error` of a migration no server runs any more. */
const MIGRATION_INTERRUPTED = "interrupted: the target server stopped running it; start the migration again";

function startMaintenance(deps: ServiceDeps, options: ContinuityServerOptions): { stop(): void } {
  const interval = options.maintenanceIntervalMs ?? 1000;
  if (interval <= 0) return { stop() {} };
  const keepEvents = options.eventRetention ?? 10_000;
  // Expiry is cheap (indexed) and user-visible, so it runs every pass; pruning and retention
  // scan every subject or stream, so they run about once a minute.
  const sweepEvery = Math.max(1, Math.round((options.sweepIntervalMs ?? 60_000) / interval));
  let pass = 0;
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    const sweep = pass++ % sweepEvery === 0;
    void (async () => {
      try {
        await deps.store.expireHandoffs(deps.clock());
        // A migration whose runner (this server or another of the store) stopped renewing its lease.
        const interrupted = await deps.store.failInterruptedMigrations(MIGRATION_INTERRUPTED, deps.clock());
        if (interrupted > 0) deps.logger.warn({ migrations: interrupted }, "migrations whose server stopped running them were marked failed");
        if (sweep) await deps.store.pruneEvents(keepEvents);
        if (sweep && options.retainDeltas !== undefined) await compactForRetention(deps, options.retainDeltas);
        // A moved subject is answered SUBJECT_MOVED for the declared time, then erased here.
        if (sweep) await deps.store.eraseMovedSubjects(new Date(deps.clock().getTime() - (options.movedRetentionMs ?? DEFAULT_MOVED_RETENTION_MS)));
      } catch (error) {
        deps.logger.error({ err: error }, "maintenance pass failed");
      } finally {
        running = false;
      }
    })();
  }, interval);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

