import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from "jose";
import { createChannel, createClientFactory, type Channel } from "nice-grpc";
import { Metadata } from "nice-grpc-common";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import { continuity } from "@continuity/sdk/gen";

// The processes `pnpm bench` measures: each server is its own Node process, started the way
// `pnpm start` starts it, so its CPU and RSS are its own and it pays real loopback costs.

const v1 = continuity.v1;
const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));

export interface Spawned {
  readonly child: ChildProcess;
  readonly address: string;
}

/** Starts `args` under tsx and resolves once it prints `<readyPrefix><address>` on stdout. */
export function spawnReady(args: string[], env: NodeJS.ProcessEnv, readyPrefix: string, nodeArgs: readonly string[] = []): Promise<Spawned> {
  const child = spawn(process.execPath, [...nodeArgs, "--conditions=source", "--import", "tsx", ...args], {
    cwd: PACKAGE_DIR,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const match = new RegExp(`^${readyPrefix}(.+)$`, "m").exec(out);
      if (match?.[1] !== undefined) resolve({ child, address: match[1].trim() });
    });
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code} before it was ready`)));
  });
}

/** Sends SIGTERM and waits for the exit (a `--cpu-prof` profile is written on the way out). */
export function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
  });
}

/** One signed-in device of a subject on a bench server. */
export interface BenchSession {
  readonly subject: string;
  readonly accessToken: string;
  readonly stream: ReturnType<typeof clientsFor>["stream"];
  readonly subscription: ReturnType<typeof clientsFor>["subscription"];
  readonly portability: ReturnType<typeof clientsFor>["portability"];
  readonly serverInfo: ReturnType<typeof clientsFor>["serverInfo"];
}

function clientsFor(channel: Channel, accessToken: string) {
  const factory = createClientFactory()
    .use(errorDetailsClientMiddleware)
    .use(async function* (call, options) {
      const metadata = Metadata(options.metadata).set("authorization", `Bearer ${accessToken}`);
      return yield* call.next(call.request, { ...options, metadata });
    });
  return {
    stream: factory.create(v1.StreamServiceDefinition, channel),
    subscription: factory.create(v1.SubscriptionServiceDefinition, channel),
    portability: factory.create(v1.PortabilityServiceDefinition, channel),
    serverInfo: factory.create(v1.ServerInfoServiceDefinition, channel),
  };
}

/** A running reference server and how to sign in to it as the `bench` platform. */
export interface ContinuityServer {
  readonly address: string;
  readonly child: ChildProcess;
  /** Signs in `deviceId` for platform account `account` (a new account gets a new subject). */
  session(deviceId: string, account?: string): Promise<BenchSession>;
  /** Stops the process and starts it again on the same data directory, with `nodeArgs`. */
  restart(nodeArgs?: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a reference server on a fresh data directory under `dir`, with one platform
 * (`bench`) whose key this process holds. `nodeArgs` go to the server's Node (`--cpu-prof`),
 * `extraEnv` to its environment (`CONTINUITY_DURABILITY`).
 */
export async function startContinuity(dir: string, nodeArgs: readonly string[] = [], extraEnv: NodeJS.ProcessEnv = {}): Promise<ContinuityServer> {
  await mkdir(dir, { recursive: true });
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench-1", alg: "ES256", use: "sig" };
  const platformsFile = join(dir, "platforms.json");
  await writeFile(platformsFile, JSON.stringify({ platforms: [{ id: "bench", jwks: { keys: [jwk] } }] }));
  const env = { CONTINUITY_LISTEN: "127.0.0.1:0", CONTINUITY_DATA_DIR: join(dir, "data"), CONTINUITY_PLATFORMS: platformsFile, CONTINUITY_MIGRATION_SOURCES: "127.0.0.0/8,::1", ...extraEnv };
  const launch = (args: readonly string[]) => spawnReady(["src/main.ts", "--log-level", "warn"], env, "CONTINUITY_LISTENING=", args);

  let server = await launch(nodeArgs);
  let channel = createChannel(server.address);
  const self: ContinuityServer = {
    get address() {
      return server.address;
    },
    get child() {
      return server.child;
    },
    async session(deviceId, account = "bench-user") {
      const { accessToken, subject } = await exchange(channel, privateKey, deviceId, account);
      return { subject, accessToken, ...clientsFor(channel, accessToken) };
    },
    async restart(args = []) {
      channel.close();
      await stopProcess(server.child);
      server = await launch(args);
      channel = createChannel(server.address);
    },
    async stop() {
      channel.close();
      await stopProcess(server.child);
    },
  };
  return self;
}

async function exchange(channel: Channel, privateKey: CryptoKey, deviceId: string, account: string): Promise<{ accessToken: string; subject: string }> {
  const iat = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({ iss: "bench", aud: "continuity", sub: account, iat, exp: iat + 120, jti: randomUUID() })
    .setProtectedHeader({ alg: "ES256", typ: "continuity-assertion+jwt", kid: "bench-1" })
    .sign(privateKey);
  return createClientFactory().create(v1.TokenServiceDefinition, channel).exchangeToken({
    grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
    subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
    subjectToken: assertion,
    scope: "",
    deviceId,
    deviceDisplayName: "",
  });
}
