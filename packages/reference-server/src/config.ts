import { parseArgs } from "node:util";
import { z } from "zod";
import { parseRange } from "./services/portability/source-policy.js";

/**
 * Everything the reference server can be told at start. Each setting comes from a flag, else
 * from its environment variable, else from the default, so the same binary works from a
 * shell, a container and the conformance runner (which only sets env vars).
 */
export interface ServerConfig {
  /** `host:port` to serve gRPC on; port 0 picks a free one. */
  readonly listen: string;
  /** Directory for the database, the server key and the dev platforms. */
  readonly dataDir: string;
  /** Platforms file; undefined means "generate dev platforms in the data directory". */
  readonly platformsFile: string | undefined;
  /** `aud` that platform assertions must carry. */
  readonly audience: string;
  /** `sqlite` (a file in the data directory) or a `postgres://` URL (optionally `?schema=name`). */
  readonly store: string;
  /** Servers to run on the PostgreSQL store behind a round-robin proxy on `listen` (1: just this one). */
  readonly replicas: number;
  /** `normal` survives a crash of the server process; `full` also a power loss (SQLite) or a PostgreSQL crash. */
  readonly durability: "normal" | "full";
  /** Deltas to keep below the newest snapshot when compacting; undefined keeps all history. */
  readonly retainDeltas: number | undefined;
  readonly logLevel: LogLevel;
  /** `host:port` for Prometheus `/metrics` over plain HTTP; undefined disables it. */
  readonly metricsListen: string | undefined;
  readonly accessTokenSeconds: number;
  /** Operator-managed private JWK; undefined means `<dataDir>/server-key.jwk`. */
  readonly signingKeyFile: string | undefined;
  /** A JWKS file of exporters whose bundles may bring account links (PORT-014); undefined trusts only this server. */
  readonly trustedBundleKeysFile: string | undefined;
  /** PEM CA certificates trusted for `https://` migration sources instead of the system's roots. */
  readonly migrationCaFile: string | undefined;
  /** Address ranges migration sources may be dialed at besides public unicast addresses (PORT-041). */
  readonly migrationSources: readonly string[];
  /** The address sent as SUBJECT_MOVED `target` when a subject migrates here; undefined: the bound address. */
  readonly publicAddress: string | undefined;
  /** Connections open at once on each listening address. */
  readonly maxConnections: number;
  /** Calls one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  readonly maxStreamsPerConnection: number;
  /** Seconds a connection without open calls stays up. */
  readonly idleConnectionSeconds: number;
  /** Seconds a new connection has to send the HTTP/2 connection preface. */
  readonly handshakeSeconds: number;
  /** PEM files to serve TLS with (`clientCaFile`: client certificates required); undefined serves plaintext. */
  readonly tls: { readonly certFile: string; readonly keyFile: string; readonly clientCaFile: string | undefined } | undefined;
  /** `host:port` to serve gRPC-web on (browsers); undefined disables it. */
  readonly grpcWebListen: string | undefined;
  /** Origins the gRPC-web port answers CORS for (`*`: any); empty: same origin only. */
  readonly corsOrigins: readonly string[];
}

/** Log levels accepted by `--log-level` (pino's). */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A refused command line or environment; `message` is meant to be printed as is. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** What {@link parseConfig} decided: run with a config, or print help and exit 0. */
export type ConfigResult = { readonly kind: "run"; readonly config: ServerConfig } | { readonly kind: "help"; readonly text: string };

interface Setting {
  readonly flag: string;
  readonly env: string | undefined;
  readonly value: string;
  readonly help: string;
  readonly defaultText?: string;
}

// A table rather than ad-hoc parsing so --help, env names and error messages cannot drift apart.
const SETTINGS = {
  listen: { flag: "listen", env: "CONTINUITY_LISTEN", value: "host:port", help: "gRPC listen address", defaultText: "127.0.0.1:50051" },
  dataDir: { flag: "data-dir", env: "CONTINUITY_DATA_DIR", value: "dir", help: "data directory", defaultText: "./.continuity" },
  platforms: {
    flag: "platforms",
    env: "CONTINUITY_PLATFORMS",
    value: "file",
    help: "platforms file (JSON); default: dev platforms demo-a/demo-b generated in the data dir",
  },
  audience: { flag: "audience", env: "CONTINUITY_AUDIENCE", value: "aud", help: "required `aud` of platform assertions", defaultText: "continuity" },
  store: {
    flag: "store",
    env: "CONTINUITY_STORE",
    value: "sqlite|postgres://…",
    help: "where state is kept: sqlite in the data dir, or a PostgreSQL URL (?schema=name, default continuity); servers on one PostgreSQL schema are replicas of one store",
    defaultText: "sqlite",
  },
  replicas: {
    flag: "replicas",
    env: "CONTINUITY_REPLICAS",
    value: "n",
    help: "run n servers on the PostgreSQL store behind a per-call round-robin proxy on --listen (1..16), to try replicas locally",
    defaultText: "1",
  },
  durability: {
    flag: "durability",
    env: "CONTINUITY_DURABILITY",
    value: "normal|full",
    help: "normal survives a crash of the server process; full also power loss (SQLite) or a crash of PostgreSQL (synchronous_commit on)",
    defaultText: "normal",
  },
  retainDeltas: {
    flag: "retain-deltas",
    env: "CONTINUITY_RETAIN_DELTAS",
    value: "n",
    help: "deltas to keep below the head; older ones are compacted away by a periodic sweep (opaque streams only down to an uploaded snapshot); default: keep all",
  },
  logLevel: { flag: "log-level", env: "CONTINUITY_LOG_LEVEL", value: LOG_LEVELS.join("|"), help: "log level", defaultText: "info" },
  metricsListen: {
    flag: "metrics-listen",
    env: "CONTINUITY_METRICS_LISTEN",
    value: "host:port",
    help: "serve Prometheus /metrics over HTTP; default: off",
  },
  accessTokenSeconds: {
    flag: "access-token-seconds",
    env: "CONTINUITY_ACCESS_TOKEN_SECONDS",
    value: "s",
    help: "access token lifetime in seconds (5..86400; under 60 only for testing expiry)",
    defaultText: "900",
  },
  maxConnections: {
    flag: "max-connections",
    env: "CONTINUITY_MAX_CONNECTIONS",
    value: "n",
    help: "connections open at once per listening address; more are closed as they arrive (1..1000000)",
    defaultText: "1000",
  },
  maxStreamsPerConnection: {
    flag: "max-streams-per-connection",
    env: "CONTINUITY_MAX_STREAMS_PER_CONNECTION",
    value: "n",
    help: "calls one connection may have open at once, subscriptions included (100..1000000)",
    defaultText: "1000",
  },
  idleConnectionSeconds: {
    flag: "idle-connection-seconds",
    env: "CONTINUITY_IDLE_CONNECTION_SECONDS",
    value: "s",
    help: "close a connection that has had no open call this long (1..86400)",
    defaultText: "300",
  },
  handshakeSeconds: {
    flag: "handshake-seconds",
    env: "CONTINUITY_HANDSHAKE_SECONDS",
    value: "s",
    help: "close a new connection that has not sent the HTTP/2 preface by then (1..300)",
    defaultText: "10",
  },
  tlsCert: {
    flag: "tls-cert",
    env: "CONTINUITY_TLS_CERT",
    value: "file",
    help: "serve TLS with this PEM certificate (chain), together with --tls-key; default: plaintext",
  },
  tlsKey: { flag: "tls-key", env: "CONTINUITY_TLS_KEY", value: "file", help: "PEM private key of --tls-cert" },
  tlsClientCa: {
    flag: "tls-client-ca",
    env: "CONTINUITY_TLS_CLIENT_CA",
    value: "file",
    help: "require a client certificate signed by one of these PEM CA certificates (mutual TLS); needs --tls-cert",
  },
  signingKey: {
    flag: "signing-key",
    env: "CONTINUITY_SIGNING_KEY",
    value: "file",
    help: "server private JWK (ES256); default: <data-dir>/server-key.jwk, created on first start",
  },
  trustedBundleKeys: {
    flag: "trusted-bundle-keys",
    env: "CONTINUITY_TRUSTED_BUNDLE_KEYS",
    value: "file",
    help: "JWKS of other servers whose bundles (imports, migrations) may bring account links; default: only this server's own",
  },
  migrationCa: {
    flag: "migration-ca",
    env: "CONTINUITY_MIGRATION_CA",
    value: "file",
    help: "PEM CA certificates that https:// migration sources must chain to; default: the system's roots",
  },
  migrationSources: {
    flag: "migration-sources",
    env: "CONTINUITY_MIGRATION_SOURCES",
    value: "ranges",
    help: "comma-separated addresses or CIDR ranges (10.0.0.0/8, ::1) that live-migration sources may also be dialed at; default: public unicast addresses only, never loopback, private or link-local ones",
  },
  publicAddress: {
    flag: "public-address",
    env: "CONTINUITY_PUBLIC_ADDRESS",
    value: "host:port",
    help: "address clients are sent to when a subject migrates here (SUBJECT_MOVED target); default: the bound address",
  },
  grpcWebListen: {
    flag: "grpc-web-listen",
    env: "CONTINUITY_GRPC_WEB_LISTEN",
    value: "host:port",
    help: "also serve gRPC-web (HTTP/1.1 and h2c) here, for browsers; default: off",
  },
  corsOrigin: {
    flag: "cors-origin",
    env: "CONTINUITY_CORS_ORIGIN",
    value: "origins",
    help: "comma-separated origins (https://app.example.com) the gRPC-web port answers CORS for, or * for any; default: none",
  },
} as const satisfies Record<string, Setting>;

const HOST_PORT = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

const hostPort = z
  .string()
  .regex(HOST_PORT, "must be host:port, e.g. 127.0.0.1:50051 or [::1]:0")
  .refine((value) => Number(HOST_PORT.exec(value)?.[1]) <= 65535, "port must be 0..65535");

const integerText = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const configSchema = z.object({
  listen: hostPort,
  dataDir: z.string().min(1, "must not be empty"),
  platforms: z.string().min(1, "must not be empty").optional(),
  audience: z.string().min(1, "must not be empty").max(255),
  store: z.string().regex(/^(sqlite|postgres(ql)?:\/\/.+)$/, "must be sqlite or a postgres:// URL"),
  replicas: integerText(1, 16),
  durability: z.enum(["normal", "full"], "must be normal or full"),
  retainDeltas: integerText(0, 1_000_000_000).optional(),
  logLevel: z.enum(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(", ")}`),
  metricsListen: hostPort.optional(),
  accessTokenSeconds: integerText(5, 86_400),
  signingKey: z.string().min(1, "must not be empty").optional(),
  trustedBundleKeys: z.string().min(1, "must not be empty").optional(),
  migrationCa: z.string().min(1, "must not be empty").optional(),
  migrationSources: z
    .string()
    .optional()
    .transform((text) => (text ?? "").split(",").map((entry) => entry.trim()).filter((entry) => entry !== ""))
    .refine((entries) => entries.every(isRange), "each entry must be an IP address or a CIDR range, e.g. 10.0.0.0/8 or ::1"),
  publicAddress: hostPort.optional(),
  maxConnections: integerText(1, 1_000_000),
  maxStreamsPerConnection: integerText(100, 1_000_000),
  idleConnectionSeconds: integerText(1, 86_400),
  handshakeSeconds: integerText(1, 300),
  tlsCert: z.string().min(1, "must not be empty").optional(),
  tlsKey: z.string().min(1, "must not be empty").optional(),
  tlsClientCa: z.string().min(1, "must not be empty").optional(),
  grpcWebListen: hostPort.optional(),
  corsOrigin: z
    .string()
    .optional()
    .transform((text) => (text ?? "").split(",").map((origin) => origin.trim()).filter((origin) => origin !== ""))
    .refine((origins) => origins.every((origin) => origin === "*" || isOrigin(origin)), "each origin must be scheme://host[:port] with no path, or *"),
});

function isRange(text: string): boolean {
  try {
    parseRange(text);
    return true;
  } catch {
    return false;
  }
}

function isOrigin(text: string): boolean {
  try {
    return new URL(text).origin === text;
  } catch {
    return false;
  }
}

/** The `--help` text. */
export function helpText(): string {
  const lines = ["Usage: continuity-server [options]", "", "Continuity reference server (gRPC, continuity.v1).", "", "Options:"];
  for (const setting of Object.values(SETTINGS) as Setting[]) {
    const left = `  --${setting.flag} <${setting.value}>`;
    const env = setting.env === undefined ? "" : ` [env ${setting.env}]`;
    const def = setting.defaultText === undefined ? "" : ` (default ${setting.defaultText})`;
    lines.push(left, `      ${setting.help}${def}${env}`);
  }
  lines.push("  --help", "      print this text and exit", "");
  lines.push("When ready the server prints `CONTINUITY_LISTENING=<host:port>` on stdout; logs go to stderr as JSON.");
  return `${lines.join("\n")}\n`;
}

/**
 * Parses flags and environment into a validated config. Throws {@link ConfigError} with one
 * message naming the flag (and its env var) on the first bad value, so a typo fails the start
 * instead of silently running with a default.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): ConfigResult {
  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const setting of Object.values(SETTINGS) as Setting[]) {
    options[setting.flag] = { type: "string" };
  }
  // `npm start -- --help` and `pnpm start -- --help` pass their `--` separator through; as
  // the very first argument it separates nothing, so it is not read as "positionals follow".
  const args = argv[0] === "--" ? argv.slice(1) : [...argv];
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (cause) {
    throw new ConfigError(`${(cause as Error).message}. See --help.`, { cause });
  }
  if (values["help"] === true) return { kind: "help", text: helpText() };

  const raw: Record<string, string | undefined> = {};
  for (const [key, setting] of Object.entries(SETTINGS) as [keyof typeof SETTINGS, Setting][]) {
    const fromFlag = values[setting.flag];
    const fromEnv = setting.env === undefined ? undefined : env[setting.env];
    raw[key] = typeof fromFlag === "string" ? fromFlag : fromEnv !== undefined && fromEnv !== "" ? fromEnv : setting.defaultText;
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue?.path[0] ?? "") as keyof typeof SETTINGS;
    const setting: Setting | undefined = SETTINGS[key];
    const where = setting === undefined ? "configuration" : `--${setting.flag}${setting.env === undefined ? "" : ` (${setting.env})`}`;
    throw new ConfigError(`invalid ${where}: ${issue?.message ?? "invalid value"} (got ${JSON.stringify(raw[key])})`);
  }
  const data = parsed.data;
  if (data.replicas > 1 && data.store === "sqlite") {
    throw new ConfigError("--replicas (CONTINUITY_REPLICAS) above 1 needs --store postgres://…: replicas share one database");
  }
  if (data.grpcWebListen !== undefined && data.tlsClientCa !== undefined) {
    // The bridge has no client certificate of its own to present, and a browser's would stop at the bridge.
    throw new ConfigError("--grpc-web-listen cannot be combined with --tls-client-ca: gRPC-web calls would reach the gRPC port without a client certificate");
  }
  if ((data.tlsCert === undefined) !== (data.tlsKey === undefined) || (data.tlsClientCa !== undefined && data.tlsCert === undefined)) {
    throw new ConfigError("invalid --tls-cert / --tls-key / --tls-client-ca: a certificate needs its key, and a client CA needs both");
  }
  return {
    kind: "run",
    config: {
      listen: data.listen,
      dataDir: data.dataDir,
      platformsFile: data.platforms,
      audience: data.audience,
      store: data.store,
      replicas: data.replicas,
      durability: data.durability,
      retainDeltas: data.retainDeltas,
      logLevel: data.logLevel,
      metricsListen: data.metricsListen,
      accessTokenSeconds: data.accessTokenSeconds,
      signingKeyFile: data.signingKey,
      trustedBundleKeysFile: data.trustedBundleKeys,
      migrationCaFile: data.migrationCa,
      migrationSources: data.migrationSources,
      publicAddress: data.publicAddress,
      maxConnections: data.maxConnections,
      maxStreamsPerConnection: data.maxStreamsPerConnection,
      idleConnectionSeconds: data.idleConnectionSeconds,
      handshakeSeconds: data.handshakeSeconds,
      tls: data.tlsCert === undefined || data.tlsKey === undefined ? undefined : { certFile: data.tlsCert, keyFile: data.tlsKey, clientCaFile: data.tlsClientCa },
      grpcWebListen: data.grpcWebListen,
      corsOrigins: data.corsOrigin,
    },
  };
}
