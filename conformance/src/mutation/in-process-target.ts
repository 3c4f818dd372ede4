/**
 * The reference server as a conformance target inside the suite's own process, for mutation
 * testing. A mutated server must be started once per mutant; spawning a process costs seconds
 * (tsx transforms, SQLite, key generation), while an in-process instance of the already loaded
 * modules starts in milliseconds, and Stryker's mutant switching then selects the mutant at run
 * time without reloading anything.
 *
 * The composition mirrors `packages/reference-server/src/main.ts` (`run`), which is the process
 * shell around the same library calls: settings are parsed by the server's own `parseConfig`
 * from the runner contract's environment, so the in-process server is configured exactly like a
 * spawned one. What main.ts adds (signals, exit codes, stdout ready line) has no protocol
 * behaviour. Restarting means closing the store and opening it again on the same data
 * directory; a real SIGKILL is not simulated, so durability against a crash is only proven by
 * the spawned runs (`pnpm conformance`, `pnpm conformance:mutants`).
 *
 * The store is SQLite in the data directory, or, given `store` (a postgres:// URL), the
 * server's PostgreSQL store, opened the way main.ts opens it (`CONTINUITY_STORE`), on a schema
 * of its own per data directory (runner/postgres-schemas.ts, as spawn mode does): a restart
 * reopens the same schema, wiped data and a sibling get new ones, and `stop` drops every
 * schema the target made.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Writable } from "node:stream";
import type { RestartOptions } from "../harness/context.js";
import { PLAINTEXT } from "../harness/security.js";
import { postgresSchemas } from "../runner/postgres-schemas.js";
import { SPAWN_MIGRATION_SOURCES, type Target } from "../runner/target.js";

// The few library calls used, typed here: the suite does not depend on the server package (it
// loads whichever copy of the sources it is pointed at).
interface Logger {
  error(fields: object, message: string): void;
}
interface ServerStore {
  close(): Promise<void>;
}
interface ServerLibrary {
  loadPlatformsFile(path: string): Promise<unknown>;
  createTokenAuthority(options: { platforms: unknown; signingKey: { kind: "data-dir"; dataDir: string }; audience: string; accessTokenSeconds: number }): Promise<unknown>;
  createSqliteStore(options: { path: string; durability: string; onListenerError: (error: unknown) => void }): ServerStore;
  createPostgresStore(options: { url: string; durability: string; onListenerError: (error: unknown) => void }): Promise<ServerStore>;
  createServerMetrics(): unknown;
  createContinuityServer(options: Record<string, unknown>): Promise<{ listen(address: string): Promise<string>; shutdown(): Promise<void> }>;
}
interface ServerConfig {
  readonly listen: string;
  readonly dataDir: string;
  /** `sqlite`, or a postgres:// URL. */
  readonly store: string;
  readonly audience: string;
  readonly durability: string;
  readonly retainDeltas: number | undefined;
  readonly migrationSources?: readonly string[];
  readonly migrationCaFile?: string | undefined;
  readonly accessTokenSeconds: number;
  readonly maxConnections: number;
  readonly maxStreamsPerConnection: number;
  readonly idleConnectionSeconds: number;
  readonly handshakeSeconds: number;
}
interface ConfigModule {
  parseConfig(argv: readonly string[], env: Record<string, string | undefined>): { kind: "help" } | { kind: "run"; config: ServerConfig };
}
type PinoFactory = (options: { level: string; base: Record<string, string> }, destination: Writable) => Logger;

/** The server's modules, loaded from a source tree (the real one, or Stryker's instrumented copy). */
export interface ServerModules {
  readonly library: ServerLibrary;
  readonly config: ConfigModule;
  readonly pino: PinoFactory;
  /** The `src` directory the modules were loaded from. */
  readonly srcDir: string;
}

/** Imports the reference server library from `srcDir` (a `packages/reference-server/src`). */
export async function loadServerModules(srcDir: string): Promise<ServerModules> {
  const at = (file: string) => pathToFileURL(join(srcDir, file)).href;
  const [library, config, pinoModule] = await Promise.all([
    import(at("index.ts")) as Promise<ServerLibrary>,
    import(at("config.ts")) as Promise<ConfigModule>,
    // The server's own logger library, resolved from its package like its sources do.
    import(pathToFileURL(createRequire(join(srcDir, "index.ts")).resolve("pino")).href) as Promise<{ pino: PinoFactory }>,
  ]);
  return { library, config, pino: pinoModule.pino, srcDir: resolve(srcDir) };
}

/** What an in-process target needs. */
export interface InProcessTargetOptions {
  readonly modules: ServerModules;
  readonly platformsFile: string;
  readonly audience: string;
  /** Extra settings, as the environment variables a spawned server would get. */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * A postgres:// URL: the server runs on its PostgreSQL store in that database, each data
   * directory on a schema named `<the URL's schema, default conformance>_<random>`. Default:
   * SQLite in the data directory.
   */
  readonly store?: string;
}

const OUTPUT_TAIL_BYTES = 64 * 1024;

/** Starts the reference server in this process on 127.0.0.1:0 with a fresh data directory. */
export async function startInProcessTarget(options: InProcessTargetOptions): Promise<Target> {
  const { library, config: configModule, pino } = options.modules;
  const schemas = postgresSchemas(options.store);
  if (options.store !== undefined && schemas === undefined) throw new Error(`store must be a postgres:// URL, not ${JSON.stringify(options.store)}`);
  const dataDirs: string[] = [];
  let dataDir = await newDataDir(dataDirs);
  let output = "";
  const logs = new Writable({
    write(chunk: Buffer, _encoding, done) {
      output = (output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_BYTES);
      done();
    },
  });
  let running: { address: string; stop(): Promise<void> } | undefined;

  const start = async (): Promise<void> => {
    const parsed = configModule.parseConfig([], {
      ...options.env,
      CONTINUITY_LISTEN: "127.0.0.1:0",
      CONTINUITY_DATA_DIR: dataDir,
      CONTINUITY_PLATFORMS: options.platformsFile,
      CONTINUITY_AUDIENCE: options.audience,
      CONTINUITY_MIGRATION_SOURCES: SPAWN_MIGRATION_SOURCES,
      ...(schemas === undefined ? {} : { CONTINUITY_STORE: schemas.urlFor(dataDir) }),
    });
    if (parsed.kind !== "run") throw new Error("parseConfig asked for help");
    const config = parsed.config;
    const logger = pino({ level: "warn", base: { service: "continuity-server" } }, logs);
    const platforms = await library.loadPlatformsFile(options.platformsFile);
    const tokens = await library.createTokenAuthority({
      platforms,
      signingKey: { kind: "data-dir", dataDir: config.dataDir },
      audience: config.audience,
      accessTokenSeconds: config.accessTokenSeconds,
    });
    const onListenerError = (error: unknown) => logger.error({ err: error }, "store listener failed");
    const store =
      config.store === "sqlite"
        ? library.createSqliteStore({ path: join(resolve(config.dataDir), "continuity.sqlite"), durability: config.durability, onListenerError })
        : await library.createPostgresStore({ url: config.store, durability: config.durability, onListenerError });
    const serverOptions = {
      store,
      tokens,
      logger,
      metrics: library.createServerMetrics(),
      // A case's leftover subscription must not hold the next mutant's server for 5 s.
      shutdownGraceMs: 1000,
      ...(config.retainDeltas === undefined ? {} : { retainDeltas: config.retainDeltas }),
      ...(config.migrationSources === undefined ? {} : { migrationSources: config.migrationSources }),
      // The CA a case's TLS sources chain to (CONTINUITY_MIGRATION_CA), as main.ts reads it.
      ...(config.migrationCaFile === undefined ? {} : { migrationCa: await readFile(config.migrationCaFile) }),
      connections: {
        maxConnections: config.maxConnections,
        maxStreamsPerConnection: config.maxStreamsPerConnection,
        idleTimeoutMs: config.idleConnectionSeconds * 1000,
        handshakeTimeoutMs: config.handshakeSeconds * 1000,
      },
    };
    let server;
    try {
      server = await library.createContinuityServer(serverOptions);
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
    let address: string;
    try {
      address = await server.listen(config.listen);
    } catch (error) {
      await server.shutdown().catch(() => undefined);
      await store.close().catch(() => undefined);
      throw error;
    }
    running = {
      address,
      async stop() {
        await server.shutdown().catch(() => undefined);
        await store.close().catch(() => undefined);
      },
    };
  };

  const stopServer = async (): Promise<void> => {
    const current = running;
    running = undefined;
    await current?.stop();
  };

  const removeData = async (): Promise<void> => {
    await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
    await schemas?.dropAll();
  };

  try {
    await start();
  } catch (error) {
    await removeData().catch(() => undefined);
    throw error;
  }
  return {
    mode: "spawn",
    description: `in-process: ${options.modules.srcDir}`,
    security: PLAINTEXT,
    address: () => running?.address ?? "127.0.0.1:1",
    async restart(restartOptions: RestartOptions) {
      await stopServer();
      if (restartOptions.wipeData) dataDir = await newDataDir(dataDirs);
      await start();
    },
    // The sibling gets the extra settings a case asks for (CONTINUITY_ACCESS_TOKEN_SECONDS of
    // auth.token-expiry), as a spawned sibling does.
    spawnSibling: (env) => startInProcessTarget(env === undefined ? options : { ...options, env: { ...options.env, ...env } }),
    output: () => output,
    crashed: () => false,
    async stop() {
      await stopServer();
      await removeData();
    },
  };
}

async function newDataDir(dirs: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "continuity-mutation-data-"));
  dirs.push(dir);
  return dir;
}
