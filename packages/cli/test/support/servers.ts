/**
 * Reference servers for the CLI's end-to-end tests, started the way `pnpm start` starts one:
 * a child process of packages/reference-server/src/main.ts on 127.0.0.1:0 with its own data
 * directory, where it generates the development platforms demo-a and demo-b and their
 * private keys — the files the CLI is then given, as a person would.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createAssertionTokenProvider, createContinuityClient, v1, type ContinuityClient } from "@continuity/sdk";
import { importJWK, SignJWT, type JWK } from "jose";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

/** A running reference server. */
export interface ServerProcess {
  readonly address: string;
  readonly dataDir: string;
  /** The private JWK file of a development platform (`demo-a`, `demo-b`). */
  keyFile(platform: "demo-a" | "demo-b"): string;
  /** An SDK client signed in as `account` of `platform` on device `device`. */
  client(account: string, options?: { readonly device?: string; readonly platform?: "demo-a" | "demo-b" }): ContinuityClient;
  stop(): Promise<void>;
}

/** Starts a server and waits for its ready line. */
export async function startServer(): Promise<ServerProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), "continuity-cli-server-"));
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "packages/reference-server/src/main.ts"], {
    cwd: REPO,
    env: { ...process.env, CONTINUITY_LISTEN: "127.0.0.1:0", CONTINUITY_DATA_DIR: dataDir, CONTINUITY_LOG_LEVEL: "warn", CONTINUITY_MIGRATION_SOURCES: "127.0.0.0/8,::1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const address = await new Promise<string>((ready, fail) => {
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`the reference server did not start in time:\n${stderr}`));
    }, 30_000);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
      const match = /CONTINUITY_LISTENING=(\S+)/.exec(stdout);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        ready(match[1]);
      }
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`the reference server exited with ${code}:\n${stderr}`));
    });
  });
  const keyFile = (platform: "demo-a" | "demo-b") => join(dataDir, "dev-platforms", `${platform}.private.jwk`);
  const clients: ContinuityClient[] = [];
  return {
    address,
    dataDir,
    keyFile,
    client(account, options = {}) {
      const platform = options.platform ?? "demo-a";
      const client = createContinuityClient({
        address,
        tokenProvider: createAssertionTokenProvider({
          ...(options.device === undefined ? {} : { deviceId: options.device }),
          getAssertion: async () => assertion(keyFile(platform), platform, account, address),
        }),
      });
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients) client.close();
      child.kill("SIGTERM");
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A platform assertion signed the way a platform's backend signs one (independently of the CLI's code). */
async function assertion(keyFile: string, platform: string, account: string, address: string): Promise<string> {
  const jwk = JSON.parse(await readFile(keyFile, "utf8")) as JWK;
  const audience = await audienceOf(address);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: "ES256", typ: "continuity-assertion+jwt", kid: jwk.kid! })
    .setIssuer(platform)
    .setAudience(audience)
    .setSubject(account)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .sign(await importJWK(jwk, "ES256"));
}

const audiences = new Map<string, Promise<string>>();
function audienceOf(address: string): Promise<string> {
  let audience = audiences.get(address);
  if (audience === undefined) {
    const client = createContinuityClient({ address, tokenProvider: { getToken: () => Promise.reject(new Error("no token")) } });
    audience = client.serverInfo.getServerInfo({}).then((info) => info.assertionAudience).finally(() => client.close());
    audiences.set(address, audience);
  }
  return audience;
}

/** What a subject holds, as ListStreams shows it: stream id → uid, head version and head hash. */
export async function heads(client: ContinuityClient): Promise<Record<string, { uid: string; headVersion: string; headHash: string }>> {
  const { subject } = await client.session();
  const { streams } = await client.streams.listStreams({ parent: subject, pageSize: 100, pageToken: "" });
  return Object.fromEntries(
    streams.map((stream) => [stream.name.slice(stream.name.lastIndexOf("/") + 1), { uid: stream.uid, headVersion: stream.headVersion.toString(), headHash: Buffer.from(stream.headHash).toString("hex") }]),
  );
}

/** Writes a learner's state through a device: a progress stream of `deltas` deltas and a cart of a few. */
export async function writeState(client: ContinuityClient, deltas: number): Promise<void> {
  const { subject } = await client.session();
  for (const [id, count] of [["progress", deltas], ["cart", 3]] as const) {
    let sequence = 0n;
    const { stream } = await client.streams.createStream({
      parent: subject,
      streamId: id,
      stream: v1.Stream.fromPartial({ type: `org.example.${id}`, encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND }),
    });
    for (let i = 1; i <= count; i += 10) {
      const batch = Array.from({ length: Math.min(10, count - i + 1) }, (_, k) => ({ payload: Buffer.from(JSON.stringify({ [`step${(i + k) % 7}`]: i + k, note: "x".repeat(40) })) }));
      sequence += 1n;
      await client.streams.appendDeltas({ stream: stream!.name, deltas: batch, clientSequence: sequence });
    }
  }
}
