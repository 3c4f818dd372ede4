import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChannel, createClientFactory, type Channel, type Client, type ClientFactory } from "nice-grpc";
import { Metadata, Status } from "nice-grpc-common";
import { BadRequest, ErrorInfo, errorDetailsClientMiddleware, RichClientError } from "nice-grpc-error-details";
import { pino } from "pino";
import { continuity } from "@continuity/sdk/gen";
import type { Scope } from "../auth/context.js";
import { createPlatformRegistry } from "../auth/platforms.js";
import { createTokenAuthority, type TokenAuthority } from "../auth/token-authority.js";
import { createServerMetrics } from "../ops/metrics.js";
import { createContinuityServer, type ContinuityServer, type ContinuityServerOptions } from "../server.js";
import type { Store } from "../store/index.js";
import { createTestPlatform, type TestPlatform } from "./test-platform.js";
import { createPostgresStore } from "../store/postgres/pg-store.js";
import { openTestPostgresStore, TEST_DATABASE_URL } from "./postgres.js";
import { startRoundRobinProxy, type RoundRobinProxy } from "../ops/round-robin-proxy.js";
import { openTestStore, type TestStoreKind } from "./test-store.js";

const v1 = continuity.v1;

/** The ranges test servers may dial migration sources at: the loopback ones they listen on. */
export const LOOPBACK_SOURCES: readonly string[] = ["127.0.0.0/8", "::1"];

/** Typed clients of every continuity.v1 service on one channel. */
export interface Clients {
  readonly token: Client<typeof v1.TokenServiceDefinition>;
  readonly subject: Client<typeof v1.SubjectServiceDefinition>;
  readonly device: Client<typeof v1.DeviceServiceDefinition>;
  readonly consent: Client<typeof v1.ConsentServiceDefinition>;
  readonly stream: Client<typeof v1.StreamServiceDefinition>;
  readonly checkpoint: Client<typeof v1.CheckpointServiceDefinition>;
  readonly subscription: Client<typeof v1.SubscriptionServiceDefinition>;
  readonly portability: Client<typeof v1.PortabilityServiceDefinition>;
  readonly serverInfo: Client<typeof v1.ServerInfoServiceDefinition>;
}

/** A signed-in user: what ExchangeToken returned, and clients that send its token. */
export interface Session {
  readonly token: string;
  readonly subjectId: string;
  /** `subjects/{subject}` */
  readonly subject: string;
  readonly deviceId: string | undefined;
  readonly platformId: string;
  readonly clients: Clients;
}

/** Options of {@link startTestServer}: any server option, plus extra platforms. */
export type TestServerOptions = Partial<Omit<ContinuityServerOptions, "store" | "tokens" | "logger" | "metrics">> & {
  /** Platform ids to create besides `course-a` and `course-b`. */
  readonly extraPlatforms?: readonly { readonly id: string; readonly scopes?: readonly Scope[] }[];
  /** Keep the data directory (for restart tests); default false. */
  readonly dataDir?: string;
  /** The backend; default from `CONTINUITY_TEST_STORE` (SQLite unless it says postgres). */
  readonly storeKind?: TestStoreKind;
  /**
   * Servers on one PostgreSQL schema behind a per-call round-robin proxy (default 1, no
   * proxy): `address` is then the proxy's, and consecutive calls reach different servers.
   */
  readonly replicas?: number;
};

/** One of several servers on one database (see {@link TestServerOptions.replicas}). */
export interface TestReplica {
  readonly address: string;
  readonly store: Store;
  readonly server: ContinuityServer;
}

/** A real server on 127.0.0.1:0 with a fresh store (see `test-store.ts`) and two test platforms. */
export interface TestServer {
  readonly address: string;
  readonly dataDir: string;
  readonly store: Store;
  readonly tokens: TokenAuthority;
  readonly server: ContinuityServer;
  /** `course-a`, `course-b`, then any extra platforms by id. */
  readonly platforms: Readonly<Record<string, TestPlatform>>;
  /** Every server, the first being `server`; one unless `replicas` was given. */
  readonly replicas: readonly TestReplica[];
  /** The proxy in front of the replicas, when there are several. */
  readonly proxy: RoundRobinProxy | undefined;
  /** Clients without a token. */
  readonly anonymous: Clients;
  /** Clients sending `token`. */
  clientsFor(token: string): Clients;
  /** Clients sending `token` to replica `index` itself, past the proxy. */
  replicaClients(index: number, token: string): Clients;
  /**
   * Signs in through ExchangeToken, like a real client: `accountId` of `platformId`, bound
   * to `deviceId` (default `device-1`; pass `null` for an unbound token).
   */
  signIn(platformId: string, accountId: string, options?: { deviceId?: string | null; scope?: string }): Promise<Session>;
  /**
   * Links `accountId` of `platformId` to the session's subject through a link code (the
   * user's consent), then signs that account in on `deviceId`.
   */
  link(session: Session, platformId: string, accountId: string, options?: { deviceId?: string | null }): Promise<Session>;
  close(): Promise<void>;
}

/** Starts a full server for a test. Always `close()` it (e.g. in `afterEach`). */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const platformList = await Promise.all([
    createTestPlatform("course-a"),
    createTestPlatform("course-b"),
    ...(options.extraPlatforms ?? []).map((p) => createTestPlatform(p.id, p.scopes === undefined ? {} : { scopes: p.scopes })),
  ]);
  const platforms = Object.fromEntries(platformList.map((p) => [p.id, p]));
  const ownsDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "continuity-core-")));
  const replicaCount = options.replicas ?? 1;
  const opened = replicaCount > 1 ? await openTestPostgresStore() : await openTestStore(dataDir, options.storeKind);
  const store = opened.store;
  const tokens = await createTokenAuthority({
    platforms: createPlatformRegistry(platformList.map((p) => p.config)),
    signingKey: { kind: "ephemeral" },
    jwksCopies: store,
    ...(options.clock === undefined ? {} : { now: options.clock }),
  });
  const { extraPlatforms: _extra, dataDir: _dir, storeKind: _kind, replicas: _count, ...serverOptions } = options;
  const startReplica = async (replicaStore: Store): Promise<TestReplica> => {
    const replicaServer = await createContinuityServer({
      // Test servers migrate from each other on loopback, which PORT-041 keeps closed by default.
      migrationSources: LOOPBACK_SOURCES,
      ...serverOptions,
      store: replicaStore,
      tokens,
      logger: pino({ level: "silent" }),
      metrics: createServerMetrics(),
    });
    return { address: await replicaServer.listen("127.0.0.1:0"), store: replicaStore, server: replicaServer };
  };
  const replicas: TestReplica[] = [await startReplica(store)];
  // Further replicas open the same schema: one store, as several processes would share it.
  const schema = "schema" in opened && typeof opened.schema === "string" ? opened.schema : undefined;
  for (let i = 1; i < replicaCount && schema !== undefined; i++) {
    replicas.push(await startReplica(await createPostgresStore({ url: TEST_DATABASE_URL, schema, poolSize: 4 })));
  }
  const proxy = replicaCount > 1 ? await startRoundRobinProxy(replicas.map((r) => r.address)) : undefined;
  const server = replicas[0]!.server;
  const address = proxy?.address ?? replicas[0]!.address;
  const channel: Channel = createChannel(address);
  const base = createClientFactory().use(errorDetailsClientMiddleware);
  const withToken = (token: string) =>
    clientsOf(
      base.use(async function* (call, callOptions) {
        const metadata = Metadata(callOptions.metadata).set("authorization", `Bearer ${token}`);
        return yield* call.next(call.request, { ...callOptions, metadata });
      }),
      channel,
    );
  const anonymous = clientsOf(base, channel);
  const directChannels: Channel[] = [];

  const testServer: TestServer = {
    address,
    dataDir,
    store,
    tokens,
    server,
    replicas,
    proxy,
    platforms,
    anonymous,
    clientsFor: withToken,
    replicaClients(index, token) {
      const replica = replicas[index];
      if (replica === undefined) throw new Error(`no replica ${index}`);
      const direct = createChannel(replica.address);
      directChannels.push(direct);
      return clientsOf(
        base.use(async function* (call, callOptions) {
          return yield* call.next(call.request, { ...callOptions, metadata: Metadata(callOptions.metadata).set("authorization", `Bearer ${token}`) });
        }),
        direct,
      );
    },
    async signIn(platformId, accountId, signInOptions = {}) {
      const platform = platforms[platformId];
      if (platform === undefined) throw new Error(`no test platform ${platformId}`);
      const deviceId = signInOptions.deviceId === undefined ? "device-1" : (signInOptions.deviceId ?? "");
      const response = await anonymous.token.exchangeToken({
        grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
        subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
        subjectToken: await platform.assertion(accountId),
        scope: signInOptions.scope ?? "",
        deviceId,
        deviceDisplayName: "",
      });
      const subjectId = response.subject.slice("subjects/".length);
      return {
        token: response.accessToken,
        subjectId,
        subject: response.subject,
        deviceId: deviceId === "" ? undefined : deviceId,
        platformId,
        clients: withToken(response.accessToken),
      };
    },
    async link(session, platformId, accountId, linkOptions = {}) {
      const platform = platforms[platformId];
      if (platform === undefined) throw new Error(`no test platform ${platformId}`);
      const { code } = await session.clients.subject.createLinkCode({ parent: session.subject });
      await anonymous.subject.redeemLinkCode({ subjectToken: await platform.assertion(accountId), code });
      return testServer.signIn(platformId, accountId, linkOptions);
    },
    async close() {
      channel.close();
      for (const direct of directChannels) direct.close();
      await proxy?.close();
      for (const replica of replicas) await replica.server.shutdown();
      for (const replica of replicas.slice(1)) await replica.store.close();
      await opened.close();
      if (ownsDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
  return testServer;
}

function clientsOf(factory: ClientFactory, channel: Channel): Clients {
  return {
    token: factory.create(v1.TokenServiceDefinition, channel),
    subject: factory.create(v1.SubjectServiceDefinition, channel),
    device: factory.create(v1.DeviceServiceDefinition, channel),
    consent: factory.create(v1.ConsentServiceDefinition, channel),
    stream: factory.create(v1.StreamServiceDefinition, channel),
    checkpoint: factory.create(v1.CheckpointServiceDefinition, channel),
    subscription: factory.create(v1.SubscriptionServiceDefinition, channel),
    portability: factory.create(v1.PortabilityServiceDefinition, channel),
    serverInfo: factory.create(v1.ServerInfoServiceDefinition, channel),
  };
}

/** How a call failed: status name, ErrorInfo reason and metadata, BadRequest field paths. */
export interface CallFailure {
  readonly code: string;
  readonly reason: string | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  readonly fields: readonly string[];
}

/** Describes an error thrown by a client call. */
export function describeFailure(error: unknown): CallFailure {
  if (error instanceof RichClientError) {
    const info = error.extra.find((d): d is ErrorInfo => d.$type === ErrorInfo.$type);
    const bad = error.extra.find((d): d is BadRequest => d.$type === BadRequest.$type);
    return {
      code: Status[error.code] ?? String(error.code),
      reason: info?.reason,
      metadata: info?.metadata ?? {},
      fields: bad?.fieldViolations.map((v) => v.field) ?? [],
    };
  }
  const code = (error as { code?: unknown }).code;
  return { code: typeof code === "number" ? (Status[code] ?? String(code)) : String(error), reason: undefined, metadata: {}, fields: [] };
}

/** Awaits a call that must fail, and describes how. */
export async function failure(call: Promise<unknown> | (() => Promise<unknown>)): Promise<CallFailure> {
  try {
    await (typeof call === "function" ? call() : call);
  } catch (error) {
    return describeFailure(error);
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** Collects every message of a server stream (e.g. GetSnapshot). */
export async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

/** UTF-8 bytes of a JSON value, as a client would send a delta. */
export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), "utf8");
}
