import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChannelOptions } from "@grpc/grpc-js";
import { createAssertionTokenProvider, createContinuityClient, type ContinuityClient } from "../../src/index.js";
import { createPlatformBackend, type PlatformBackend } from "../../examples/support/platform-backend.js";
import { spawnReferenceServer } from "../../examples/support/reference-server-process.js";

/** A reference server on loopback, with the dev platforms' assertion signers. */
export interface RunningServer {
  readonly address: string;
  /** `host:port` of the gRPC-web port, when started with `grpcWeb`. */
  readonly grpcWebAddress: string | undefined;
  readonly dataDir: string;
  /** Signs assertions for dev platform `demo-a`. */
  readonly platformA: PlatformBackend;
  /** Signs assertions for dev platform `demo-b`. */
  readonly platformB: PlatformBackend;
  /** Stops the process (SIGTERM, graceful); the data directory stays. */
  stop(): Promise<void>;
  /** Starts a new process on the same data directory and the same port. */
  restart(): Promise<RunningServer>;
  /** Stops and deletes the data directory. */
  dispose(): Promise<void>;
}

/**
 * Starts the reference server on 127.0.0.1 (port 0 unless given) with a fresh or given data
 * directory. With `platformsOf`, it trusts the same development platforms as that server
 * (two "vendors" a person's platform accounts work on, as in a live migration).
 */
export async function startReferenceServer(
  options: { dataDir?: string; port?: number; platformsOf?: RunningServer; grpcWeb?: { port?: number; corsOrigins?: readonly string[] } } = {},
): Promise<RunningServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "continuity-sdk-it-")));
  const keys = join(options.platformsOf?.dataDir ?? dataDir, "dev-platforms");
  const server = await spawnReferenceServer({
    dataDir,
    ...(options.port === undefined ? {} : { port: options.port }),
    ...(options.platformsOf === undefined ? {} : { platformsFile: join(keys, "platforms.json") }),
    ...(options.grpcWeb === undefined ? {} : { grpcWebPort: options.grpcWeb.port ?? 0, ...(options.grpcWeb.corsOrigins === undefined ? {} : { corsOrigins: options.grpcWeb.corsOrigins }) }),
  });
  const { address, grpcWebAddress, stop } = server;
  return {
    address,
    grpcWebAddress,
    dataDir,
    platformA: await createPlatformBackend({ platformId: "demo-a", privateJwk: join(keys, "demo-a.private.jwk") }),
    platformB: await createPlatformBackend({ platformId: "demo-b", privateJwk: join(keys, "demo-b.private.jwk") }),
    stop,
    async restart() {
      await stop();
      return startReferenceServer({ dataDir, port: Number(address.split(":").at(-1)), ...(options.platformsOf === undefined ? {} : { platformsOf: options.platformsOf }) });
    },
    async dispose() {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A client for one device of one platform account. */
export function deviceClient(
  address: string,
  platform: PlatformBackend,
  accountId: string,
  deviceId: string,
  options: { deadlineMs?: number; channelOptions?: ChannelOptions } = {},
): ContinuityClient {
  return createContinuityClient({
    address,
    tokenProvider: createAssertionTokenProvider({ deviceId, getAssertion: () => platform.assert(accountId) }),
    deadlineMs: options.deadlineMs ?? 5_000,
    retry: { baseDelayMs: 20, maxDelayMs: 200 },
    channelOptions: options.channelOptions,
  });
}
