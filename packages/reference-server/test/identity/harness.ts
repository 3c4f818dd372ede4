import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChannel, createClientFactory, type Channel, type Client, type ClientFactory } from "nice-grpc";
import { Metadata } from "nice-grpc-common";
import { errorDetailsClientMiddleware, ErrorInfo, RichClientError, BadRequest } from "nice-grpc-error-details";
import { pino } from "pino";
import { continuity } from "@continuity/sdk/gen";
import { createPlatformRegistry, type PlatformConfig } from "../../src/auth/platforms.js";
import { createTokenAuthority, type TokenAuthority } from "../../src/auth/token-authority.js";
import { createServerMetrics } from "../../src/ops/metrics.js";
import { createContinuityServer } from "../../src/server.js";
import type { Store } from "../../src/store/index.js";
import { openTestStore } from "../../src/testing/test-store.js";
import { createTestPlatform, type TestPlatform } from "../../src/testing/test-platform.js";

const v1 = continuity.v1;

/** Typed clients of every service, on one channel. */
export interface Clients {
  readonly token: Client<typeof v1.TokenServiceDefinition>;
  readonly subject: Client<typeof v1.SubjectServiceDefinition>;
  readonly device: Client<typeof v1.DeviceServiceDefinition>;
  readonly consent: Client<typeof v1.ConsentServiceDefinition>;
  readonly stream: Client<typeof v1.StreamServiceDefinition>;
  readonly subscription: Client<typeof v1.SubscriptionServiceDefinition>;
  readonly portability: Client<typeof v1.PortabilityServiceDefinition>;
  readonly serverInfo: Client<typeof v1.ServerInfoServiceDefinition>;
}

/** A server on 127.0.0.1:0 with three platforms, and clients for it. */
export interface IdentityHarness {
  readonly address: string;
  readonly store: Store;
  readonly tokens: TokenAuthority;
  readonly platforms: { readonly a: TestPlatform; readonly b: TestPlatform; readonly readOnly: TestPlatform };
  readonly clients: Clients;
  readonly channel: Channel;
  /** Clients whose every call sends `authorization: Bearer <token>`. */
  as(token: string): Clients;
  /** Exchanges an assertion of `platform` for `accountId` and returns the response. */
  exchange(
    platform: TestPlatform,
    accountId: string,
    options?: { deviceId?: string; scope?: string; displayName?: string },
  ): Promise<continuity.v1.ExchangeTokenResponse>;
  close(): Promise<void>;
}

function clientsFor(factory: ClientFactory, channel: Channel): Clients {
  return {
    token: factory.create(v1.TokenServiceDefinition, channel),
    subject: factory.create(v1.SubjectServiceDefinition, channel),
    device: factory.create(v1.DeviceServiceDefinition, channel),
    consent: factory.create(v1.ConsentServiceDefinition, channel),
    stream: factory.create(v1.StreamServiceDefinition, channel),
    subscription: factory.create(v1.SubscriptionServiceDefinition, channel),
    portability: factory.create(v1.PortabilityServiceDefinition, channel),
    serverInfo: factory.create(v1.ServerInfoServiceDefinition, channel),
  };
}

/** Starts a real server over loopback with a fresh store (SQLite, or PostgreSQL under CONTINUITY_TEST_STORE=postgres). */
export async function startIdentityHarness(
  options: { now?: () => Date; extraPlatforms?: readonly PlatformConfig[] } = {},
): Promise<IdentityHarness> {
  const a = await createTestPlatform("course-a");
  const b = await createTestPlatform("course-b");
  const readOnly = await createTestPlatform("reader-c", { scopes: ["state.read"] });
  const dataDir = await mkdtemp(join(tmpdir(), "continuity-identity-"));
  const opened = await openTestStore(dataDir);
  const store = opened.store;
  const tokens = await createTokenAuthority({
    platforms: createPlatformRegistry([a.config, b.config, readOnly.config, ...(options.extraPlatforms ?? [])]),
    signingKey: { kind: "ephemeral" },
    jwksCopies: store,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const server = await createContinuityServer({
    store,
    tokens,
    logger: pino({ level: "silent" }),
    metrics: createServerMetrics(),
    ...(options.now === undefined ? {} : { clock: options.now }),
  });
  const address = await server.listen("127.0.0.1:0");
  const channel = createChannel(address);
  const base = createClientFactory().use(errorDetailsClientMiddleware);
  const clients = clientsFor(base, channel);
  return {
    address,
    store,
    tokens,
    platforms: { a, b, readOnly },
    clients,
    channel,
    as(token) {
      const factory = base.use(async function* (call, callOptions) {
        const metadata = Metadata(callOptions.metadata).set("authorization", `Bearer ${token}`);
        return yield* call.next(call.request, { ...callOptions, metadata });
      });
      return clientsFor(factory, channel);
    },
    async exchange(platform, accountId, exchangeOptions = {}) {
      return clients.token.exchangeToken({
        grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
        subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
        subjectToken: await platform.assertion(accountId),
        scope: exchangeOptions.scope ?? "",
        deviceId: exchangeOptions.deviceId ?? "",
        deviceDisplayName: exchangeOptions.displayName ?? "",
      });
    },
    async close() {
      channel.close();
      await server.shutdown();
      await opened.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The failure of a call, with its ErrorInfo reason and BadRequest fields decoded. */
export interface CallFailure {
  readonly code: string;
  readonly reason: string | undefined;
  readonly metadata: Record<string, string>;
  readonly fields: string[];
}

/** Awaits a call that must fail and describes how. */
export async function failure(call: Promise<unknown>): Promise<CallFailure> {
  try {
    await call;
  } catch (error) {
    if (!(error instanceof RichClientError)) {
      const code = (error as { code?: number }).code;
      return { code: code === undefined ? String(error) : v1Status(code), reason: undefined, metadata: {}, fields: [] };
    }
    const info = error.extra.find((d): d is ErrorInfo => d.$type === ErrorInfo.$type);
    const bad = error.extra.find((d): d is BadRequest => d.$type === BadRequest.$type);
    return {
      code: v1Status(error.code),
      reason: info?.reason,
      metadata: info?.metadata ?? {},
      fields: bad?.fieldViolations.map((v) => v.field) ?? [],
    };
  }
  throw new Error("expected the call to fail");
}

const STATUS_NAMES = [
  "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
  "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
];

function v1Status(code: number): string {
  return STATUS_NAMES[code] ?? String(code);
}

/** `subjects/x` → `x`. */
export function idOf(name: string): string {
  return name.split("/").pop() ?? "";
}

/** A live Subscribe call that records every message and how it ended. */
export interface LiveSubscription {
  readonly messages: continuity.v1.SubscribeResponse[];
  /** Resolves once the first message (ready/reset) arrived. */
  readonly started: Promise<void>;
  /** Resolves with the final status as a {@link CallFailure} (code `OK` if it just ended). */
  readonly ended: Promise<CallFailure>;
  cancel(): void;
}

/** Subscribes to `subject` with `clients` and keeps reading until the call ends. */
export function subscribe(clients: Clients, subject: string): LiveSubscription {
  const abort = new AbortController();
  const messages: continuity.v1.SubscribeResponse[] = [];
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const ended = failure(
    (async () => {
      for await (const message of clients.subscription.subscribe(
        { parent: subject, cursor: "", heartbeatSeconds: 0 },
        { signal: abort.signal },
      )) {
        messages.push(message);
        markStarted();
      }
    })(),
  ).catch(() => ({ code: "OK", reason: undefined, metadata: {}, fields: [] }) as CallFailure);
  return { messages, started, ended, cancel: () => abort.abort() };
}
