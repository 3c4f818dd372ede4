import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { credentials, makeGenericClientConstructor, type Client as GrpcClient } from "@grpc/grpc-js";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { createChannel, createClientFactory, type Channel } from "nice-grpc";
import { Metadata } from "nice-grpc-common";
import { continuity } from "@continuity/sdk/gen";
import { ECHO_SERVICE } from "./echo-protocol.js";

// `pnpm bench`: the reference server against a raw @grpc/grpc-js echo server, measured in
// the same run on loopback, printed side by side with their ratio. Counts and time are
// bounded so the whole run takes well under a minute. Numbers describe this machine only.

const v1 = continuity.v1;
const PACKAGE_DIR = fileURLToPath(new URL("..", import.meta.url));
const CLIENTS = Number(process.env["BENCH_CLIENTS"] ?? 32);
const APPENDS_PER_CLIENT = Number(process.env["BENCH_APPENDS"] ?? 100);
const LATENCY_SAMPLES = Number(process.env["BENCH_LATENCY_SAMPLES"] ?? 300);
const TIME_CAP_MS = 20_000;
const PAYLOAD = Buffer.from(JSON.stringify({ lesson: 12, position: "00:12:34", done: false }));

interface Spawned {
  readonly child: ChildProcess;
  readonly address: string;
}

function spawnReady(args: string[], env: NodeJS.ProcessEnv, readyPrefix: string): Promise<Spawned> {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", ...args], {
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

function percentile(sortedMs: readonly number[], p: number): number {
  const index = Math.min(sortedMs.length - 1, Math.max(0, Math.ceil((p / 100) * sortedMs.length) - 1));
  return sortedMs[index] ?? Number.NaN;
}

function now(): number {
  return performance.now();
}

// --- the reference server -------------------------------------------------------------------

async function startContinuity(dataDir: string) {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench-1", alg: "ES256", use: "sig" };
  const platformsFile = join(dataDir, "platforms.json");
  await writeFile(platformsFile, JSON.stringify({ platforms: [{ id: "bench", jwks: { keys: [jwk] } }] }));
  const server = await spawnReady(
    ["src/main.ts", "--log-level", "warn"],
    { CONTINUITY_LISTEN: "127.0.0.1:0", CONTINUITY_DATA_DIR: join(dataDir, "data"), CONTINUITY_PLATFORMS: platformsFile },
    "CONTINUITY_LISTENING=",
  );
  const channel = createChannel(server.address);
  const tokenClient = createClientFactory().create(v1.TokenServiceDefinition, channel);
  async function session(deviceId: string) {
    const iat = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ iss: "bench", aud: "continuity", sub: "bench-user", iat, exp: iat + 120, jti: randomUUID() })
      .setProtectedHeader({ alg: "ES256", typ: "continuity-assertion+jwt", kid: "bench-1" })
      .sign(privateKey);
    const exchanged = await tokenClient.exchangeToken({
      grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
      subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
      subjectToken: assertion,
      scope: "",
      deviceId,
      deviceDisplayName: "",
    });
    const factory = createClientFactory().use(async function* (call, options) {
      const metadata = Metadata(options.metadata).set("authorization", `Bearer ${exchanged.accessToken}`);
      return yield* call.next(call.request, { ...options, metadata });
    });
    return {
      subject: exchanged.subject,
      stream: factory.create(v1.StreamServiceDefinition, channel),
      subscription: factory.create(v1.SubscriptionServiceDefinition, channel),
    };
  }
  return { server, channel, session };
}

// --- the measurements ---------------------------------------------------------------------

interface Throughput {
  readonly calls: number;
  readonly seconds: number;
}

async function continuityAppendThroughput(session: Awaited<ReturnType<typeof startContinuity>>["session"]): Promise<Throughput> {
  const writers = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => session(`writer-${i}`)));
  const subject = writers[0]!.subject;
  await Promise.all(
    writers.map((w, i) =>
      w.stream.createStream({
        parent: subject,
        streamId: `bench-${i}`,
        stream: {
          type: "org.example.bench",
          encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH,
          conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND,
        },
      }),
    ),
  );
  const deadline = now() + TIME_CAP_MS;
  let calls = 0;
  const started = now();
  await Promise.all(
    writers.map(async (w, i) => {
      for (let seq = 1n; seq <= BigInt(APPENDS_PER_CLIENT) && now() < deadline; seq++) {
        await w.stream.appendDeltas({ stream: `${subject}/streams/bench-${i}`, deltas: [{ payload: PAYLOAD }], clientSequence: seq });
        calls++;
      }
    }),
  );
  return { calls, seconds: (now() - started) / 1000 };
}

function echoClient(address: string) {
  const Ctor = makeGenericClientConstructor(ECHO_SERVICE, "Echo");
  return new Ctor(address, credentials.createInsecure()) as GrpcClient & Record<string, (...args: unknown[]) => unknown>;
}

function unary(client: ReturnType<typeof echoClient>, method: "echo" | "publish", payload: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    (client[method] as (req: Buffer, cb: (err: Error | null, res: Buffer) => void) => void)(payload, (err, res) =>
      err ? reject(err) : resolve(res),
    );
  });
}

async function echoThroughput(address: string): Promise<Throughput> {
  // One channel per client, as the Continuity writers share one: keep it comparable.
  const client = echoClient(address);
  const deadline = now() + TIME_CAP_MS;
  let calls = 0;
  const started = now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = 0; i < APPENDS_PER_CLIENT && now() < deadline; i++) {
        await unary(client, "echo", PAYLOAD);
        calls++;
      }
    }),
  );
  client.close();
  return { calls, seconds: (now() - started) / 1000 };
}

async function continuityLatency(session: Awaited<ReturnType<typeof startContinuity>>["session"]): Promise<number[]> {
  const writer = await session("latency-writer");
  const reader = await session("latency-reader");
  const streamName = `${writer.subject}/streams/latency`;
  await writer.stream.createStream({
    parent: writer.subject,
    streamId: "latency",
    stream: {
      type: "org.example.bench",
      encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH,
      conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND,
    },
  });
  const abort = new AbortController();
  const waiters = new Map<bigint, () => void>();
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const reading = (async () => {
    try {
      for await (const message of reader.subscription.subscribe(
        { parent: writer.subject, cursor: "", heartbeatSeconds: 0 },
        { signal: abort.signal },
      )) {
        if (message.event?.$case === "ready") ready();
        if (message.event?.$case === "deltasAppended") {
          for (const delta of message.event.value.deltas) waiters.get(delta.version)?.();
        }
      }
    } catch {
      // Aborted at the end of the run.
    }
  })();
  await isReady;
  const samples: number[] = [];
  const deadline = now() + TIME_CAP_MS;
  for (let seq = 1n; seq <= BigInt(LATENCY_SAMPLES) && now() < deadline; seq++) {
    const received = new Promise<void>((resolve) => waiters.set(seq, resolve));
    const started = now();
    await writer.stream.appendDeltas({ stream: streamName, deltas: [{ payload: PAYLOAD }], clientSequence: seq });
    await received;
    samples.push(now() - started);
    waiters.delete(seq);
  }
  abort.abort();
  await reading;
  return samples.sort((a, b) => a - b);
}

async function echoLatency(address: string): Promise<number[]> {
  const publisher = echoClient(address);
  const subscriberClient = echoClient(address);
  const stream = (subscriberClient["subscribe"] as (req: Buffer) => NodeJS.EventEmitter & { cancel(): void })(Buffer.alloc(0));
  await new Promise<void>((resolve) => stream.once("metadata", () => resolve()));
  let onMessage: (() => void) | undefined;
  stream.on("data", () => onMessage?.());
  stream.on("error", () => undefined);
  const samples: number[] = [];
  const deadline = now() + TIME_CAP_MS;
  for (let i = 0; i < LATENCY_SAMPLES && now() < deadline; i++) {
    const received = new Promise<void>((resolve) => (onMessage = resolve));
    const started = now();
    await unary(publisher, "publish", PAYLOAD);
    await received;
    samples.push(now() - started);
  }
  stream.cancel();
  publisher.close();
  subscriberClient.close();
  return samples.sort((a, b) => a - b);
}

async function warmUp(session: Awaited<ReturnType<typeof startContinuity>>["session"], echoAddress: string): Promise<void> {
  const writer = await session("warm-up");
  await writer.stream.createStream({
    parent: writer.subject,
    streamId: "warm-up",
    stream: {
      type: "org.example.bench",
      encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH,
      conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND,
    },
  });
  for (let seq = 1n; seq <= 300n; seq++) {
    await writer.stream.appendDeltas({ stream: `${writer.subject}/streams/warm-up`, deltas: [{ payload: PAYLOAD }], clientSequence: seq });
  }
  const client = echoClient(echoAddress);
  for (let i = 0; i < 300; i++) await unary(client, "echo", PAYLOAD);
  client.close();
}

// --- report -------------------------------------------------------------------------------

function row(label: string, continuityValue: number, echoValue: number, unit: string, higherIsBetter: boolean): string {
  const ratio = higherIsBetter ? continuityValue / echoValue : echoValue / continuityValue;
  return `${label.padEnd(34)} ${continuityValue.toFixed(unit === "ms" ? 2 : 0).padStart(10)} ${unit.padEnd(9)} ${echoValue
    .toFixed(unit === "ms" ? 2 : 0)
    .padStart(10)} ${unit.padEnd(9)} ${(ratio * 100).toFixed(1).padStart(6)} %`;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "continuity-bench-"));
  const processes: ChildProcess[] = [];
  let channel: Channel | undefined;
  try {
    const continuityServer = await startContinuity(dir);
    processes.push(continuityServer.server.child);
    channel = continuityServer.channel;
    const echo = await spawnReady(["bench/echo-server.ts"], {}, "ECHO_LISTENING=");
    processes.push(echo.child);

    // Warm both sides (JIT, connections, SQLite caches) before anything is measured.
    await warmUp(continuityServer.session, echo.address);
    const appends = await continuityAppendThroughput(continuityServer.session);
    const echoes = await echoThroughput(echo.address);
    const appendLatency = await continuityLatency(continuityServer.session);
    const publishLatency = await echoLatency(echo.address);

    const header = `${"".padEnd(34)} ${"continuity".padStart(20)} ${"grpc-js echo".padStart(20)}  ratio`;
    const lines = [
      `Continuity reference server vs raw @grpc/grpc-js, loopback, ${CLIENTS} clients x ${APPENDS_PER_CLIENT} appends, ${LATENCY_SAMPLES} latency samples`,
      "(ratio: share of the baseline's throughput, or baseline latency / continuity latency; 100 % = as fast as the floor)",
      header,
      row("append throughput (calls/s)", appends.calls / appends.seconds, echoes.calls / echoes.seconds, "calls/s", true),
      row("append -> subscriber p50", percentile(appendLatency, 50), percentile(publishLatency, 50), "ms", false),
      row("append -> subscriber p99", percentile(appendLatency, 99), percentile(publishLatency, 99), "ms", false),
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    channel?.close();
    for (const child of processes) child.kill("SIGTERM");
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
