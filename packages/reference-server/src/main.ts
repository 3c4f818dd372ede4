#!/usr/bin/env node
import { chmod, mkdir, readFile } from "node:fs/promises";
import type { JSONWebKeySet } from "jose";
import { join, resolve } from "node:path";
import { pino, type Logger } from "pino";
import { PlatformsFileError, ensureDevPlatforms, loadPlatformsFile, type PlatformRegistry } from "./auth/platforms.js";
import { SigningKeyError, createTokenAuthority } from "./auth/token-authority.js";
import { ConfigError, parseConfig, type ServerConfig } from "./config.js";
import { createLogDestination, type LogDestination } from "./ops/log-destination.js";
import { startMetricsHttpServer, type MetricsHttpServer } from "./ops/metrics-http.js";
import { createServerMetrics } from "./ops/metrics.js";
import { loadTlsMaterial, serverCredentials } from "./ops/tls.js";
import { runReplicas } from "./replicas.js";
import { createContinuityServer } from "./server.js";
import { createPostgresStore, createSqliteStore, type Store } from "./store/index.js";

/** The stdout line the conformance runner and scripts wait for. */
export const READY_LINE_PREFIX = "CONTINUITY_LISTENING=";
/** The stdout line, before the ready line, that says where gRPC-web is served (`--grpc-web-listen`). */
export const GRPC_WEB_LINE_PREFIX = "CONTINUITY_GRPC_WEB_LISTENING=";
/** Database file inside the data directory. */
export const DATABASE_FILE = "continuity.sqlite";
/** How long a graceful shutdown may drain before calls are cut. */
const DRAIN_TIMEOUT_MS = 10_000;
/** How long the last log lines may wait for a slow log reader before the process exits anyway. */
const LOG_SETTLE_MS = 1_000;

async function loadPlatforms(config: ServerConfig, logger: Logger): Promise<PlatformRegistry> {
  if (config.platformsFile !== undefined) {
    try {
      return await loadPlatformsFile(config.platformsFile);
    } catch (error) {
      if (error instanceof PlatformsFileError) {
        throw new ConfigError(`invalid --platforms (CONTINUITY_PLATFORMS): ${error.message}`, { cause: error });
      }
      throw error;
    }
  }
  const dev = await ensureDevPlatforms(config.dataDir);
  logger.warn(
    { platformsFile: dev.platformsFile, privateKeys: dev.privateKeyFiles, created: dev.created },
    "no --platforms given: using development platforms demo-a and demo-b; sign assertions with the private keys listed here",
  );
  return loadPlatformsFile(dev.platformsFile);
}

/**
 * The data directory holds the database and keys: private to this user (0700) even when it
 * existed before with a laxer mode. A directory someone else owns cannot be tightened; its
 * files still are private, so that is a warning rather than a refusal.
 */
async function prepareDataDir(dataDir: string, logger: Logger): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  try {
    await chmod(dataDir, 0o700);
  } catch (error) {
    logger.warn({ dataDir: resolve(dataDir), err: error }, "cannot make the data directory private (0700); its files are 0600");
  }
}

/** The store `--store` names: SQLite in the data directory, or PostgreSQL (then this server may be one of several replicas). */
async function openStore(config: ServerConfig, logger: Logger): Promise<Store> {
  const onListenerError = (error: unknown) => logger.error({ err: error }, "store listener failed");
  if (config.store === "sqlite") {
    return createSqliteStore({
      path: join(resolve(config.dataDir), DATABASE_FILE),
      durability: config.durability,
      onListenerError,
      onPendingScrub: (subject) => logger.warn({ subject }, "erased data stays in the WAL until another reader of the store ends"),
    });
  }
  try {
    return await createPostgresStore({ url: config.store, durability: config.durability, onListenerError });
  } catch (error) {
    // The URL may carry a password: the message names the failure, never the URL.
    throw new Error(`cannot open the PostgreSQL store (--store): ${(error as Error).message}`, { cause: error });
  }
}

async function run(config: ServerConfig, logger: Logger, logs: LogDestination): Promise<void> {
  await prepareDataDir(config.dataDir, logger);
  const tls = config.tls === undefined ? undefined : await loadTlsMaterial(config.tls);
  const platforms = await loadPlatforms(config, logger);
  const store = await openStore(config, logger);
  const tokens = await createTokenAuthority({
    platforms,
    signingKey:
      config.signingKeyFile === undefined
        ? { kind: "data-dir", dataDir: config.dataDir }
        : { kind: "file", path: config.signingKeyFile },
    audience: config.audience,
    accessTokenSeconds: config.accessTokenSeconds,
    // Replicas on one store fetch the OpenID providers' key sets as one server (TOKEN-025).
    jwksCopies: store,
  }).catch(async (error: unknown) => {
    await store.close().catch(() => undefined);
    if (error instanceof SigningKeyError && config.signingKeyFile !== undefined) {
      throw new ConfigError(`invalid --signing-key (CONTINUITY_SIGNING_KEY): ${error.message}`, { cause: error });
    }
    throw error;
  });
  const metrics = createServerMetrics({ processMetrics: true });
  const continuity = await createContinuityServer({
    store,
    tokens,
    logger,
    metrics,
    ...(config.retainDeltas === undefined ? {} : { retainDeltas: config.retainDeltas }),
    ...(config.trustedBundleKeysFile === undefined ? {} : { trustedBundleKeys: await readTrustedKeys(config.trustedBundleKeysFile) }),
    ...(config.publicAddress === undefined ? {} : { publicAddress: config.publicAddress }),
    ...(config.migrationCaFile === undefined ? {} : { migrationCa: await readMigrationCa(config.migrationCaFile) }),
    migrationSources: config.migrationSources,
    connections: {
      maxConnections: config.maxConnections,
      maxStreamsPerConnection: config.maxStreamsPerConnection,
      idleTimeoutMs: config.idleConnectionSeconds * 1000,
      handshakeTimeoutMs: config.handshakeSeconds * 1000,
    },
  });

  let metricsHttp: MetricsHttpServer | undefined;
  let address: string;
  let grpcWebAddress: string | undefined;
  try {
    address = await continuity.listen(config.listen, tls === undefined ? undefined : serverCredentials(tls));
    if (config.grpcWebListen !== undefined) {
      grpcWebAddress = await continuity.listenGrpcWeb(config.grpcWebListen, { corsOrigins: config.corsOrigins, tls });
    }
    if (config.metricsListen !== undefined) {
      metricsHttp = await startMetricsHttpServer(metrics.registry, config.metricsListen);
    }
  } catch (error) {
    await continuity.shutdown().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw error;
  }
  logger.info(
    { address, grpcWeb: grpcWebAddress, corsOrigins: grpcWebAddress === undefined ? undefined : config.corsOrigins, tls: tls === undefined ? "off" : tls.clientCa === undefined ? "on" : "client certificates required", metrics: metricsHttp?.address, dataDir: resolve(config.dataDir), store: config.store === "sqlite" ? "sqlite" : "postgres", platforms: platforms.list().map((p) => p.id) },
    "continuity server ready",
  );
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      // A second signal means "now": the operator gave up on draining.
      logger.warn({ signal }, "second signal: exiting without draining");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, "shutting down: draining calls");
    setTimeout(() => {
      logger.error({ timeoutMs: DRAIN_TIMEOUT_MS }, "drain timed out: exiting");
      process.exit(1);
    }, DRAIN_TIMEOUT_MS).unref();
    void (async () => {
      try {
        await continuity.shutdown();
        await metricsHttp?.close();
        await store.close();
        logger.info("stopped");
        await logs.settle(LOG_SETTLE_MS);
        // Explicit, so a stray timer or socket cannot turn a clean stop into a hang.
        process.exit(0);
      } catch (error) {
        logger.error({ err: error }, "shutdown failed");
        await logs.settle(LOG_SETTLE_MS);
        process.exit(1);
      }
    })();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // Only now: a supervisor may signal the moment it reads this line, and before the handlers
  // above exist a signal kills the process without a drain.
  // Whoever reads stdout may leave after the ready line (EPIPE); there is nothing more to tell them.
  process.stdout.on("error", () => undefined);
  // The gRPC-web address first, so whoever reads up to the ready line has both.
  if (grpcWebAddress !== undefined) process.stdout.write(`${GRPC_WEB_LINE_PREFIX}${grpcWebAddress}\n`);
  process.stdout.write(`${READY_LINE_PREFIX}${address}\n`);
}

async function main(): Promise<void> {
  // Everything this process writes holds people's state or keys: nothing it creates is
  // readable by others, whatever umask it was started with.
  process.umask(0o077);
  let config: ServerConfig;
  try {
    const parsed = parseConfig(process.argv.slice(2), process.env);
    if (parsed.kind === "help") {
      process.stdout.write(parsed.text);
      return;
    }
    config = parsed.config;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`continuity-server: ${error.message}\n`);
      process.exitCode = 2;
      return;
    }
    throw error;
  }
  // Logs go to stderr so stdout carries only the ready line, which tools parse. A log reader
  // that is gone or stalled must not hold the server or its shutdown (log-destination.ts).
  let logger: Logger | undefined;
  const logs = createLogDestination(process.stderr, {
    onDropped: (lines) => logger?.warn({ lines }, "log lines dropped: the log reader fell behind"),
  });
  logger = pino({ level: config.logLevel, base: { service: "continuity-server" } }, logs);
  try {
    if (config.replicas > 1) {
      const replicaLogger = logger;
      await runReplicas({
        count: config.replicas,
        listen: config.listen,
        argv: process.argv.slice(2),
        logger: replicaLogger,
        onReady: (address) => {
          process.stdout.on("error", () => undefined);
          process.stdout.write(`${READY_LINE_PREFIX}${address}\n`);
        },
      });
      return;
    }
    await run(config, logger, logs);
  } catch (error) {
    process.stderr.write(`continuity-server: ${(error as Error).message}\n`);
    // Exit now: a half-started server may hold sockets or timers that would keep it alive.
    // A refused setting exits 2 like a refused flag; anything else is a failed start.
    if (!(error instanceof ConfigError)) logger.fatal({ err: error }, "failed to start");
    await logs.settle(LOG_SETTLE_MS);
    process.exit(error instanceof ConfigError ? 2 : 1);
  }
}

await main();

/** Reads `--migration-ca`: PEM certificates. */
async function readMigrationCa(path: string): Promise<Buffer> {
  let pem: Buffer;
  try {
    pem = await readFile(path);
  } catch (error) {
    throw new ConfigError(`invalid --migration-ca (CONTINUITY_MIGRATION_CA): cannot read ${path}: ${(error as Error).message}`);
  }
  if (!pem.toString("latin1").includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError(`invalid --migration-ca (CONTINUITY_MIGRATION_CA): ${path} holds no PEM certificate`);
  return pem;
}

/** Reads `--trusted-bundle-keys`: a JWKS document of public keys. */
async function readTrustedKeys(path: string): Promise<JSONWebKeySet> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readFile(path, "utf8"));
  } catch (error) {
    throw new ConfigError(`invalid --trusted-bundle-keys (CONTINUITY_TRUSTED_BUNDLE_KEYS): cannot read ${path} as JSON: ${(error as Error).message}`);
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.some((k) => typeof k !== "object" || k === null || "d" in k)) {
    throw new ConfigError(`invalid --trusted-bundle-keys (CONTINUITY_TRUSTED_BUNDLE_KEYS): ${path} must be a JWKS {"keys": [...]} of public keys`);
  }
  return { keys: keys as JSONWebKeySet["keys"] };
}
