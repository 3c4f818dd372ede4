import type { ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { credentials, makeGenericClientConstructor, type Client as GrpcClient } from "@grpc/grpc-js";
import { continuity } from "@continuity/sdk/gen";
import { ECHO_SERVICE } from "./echo-protocol.js";
import { spawnReady, startContinuity, stopProcess, type ContinuityServer } from "./servers.js";
import { runPortability, formatPortability, type PortabilityResult } from "./portability-run.js";

// `pnpm bench`: the reference server against floors measured in the same run on the same
// machine, printed side by side with their ratio. Core: appends and subscriber latency
// against a raw @grpc/grpc-js echo server. Portability: export and import throughput against
// reading and SHA-256-hashing the same bytes, server RSS while they run, and live migration
// under writers. Counts and time are bounded; `--quick` is a smoke run. Numbers describe
// this machine only.
//
//   pnpm bench [--quick] [--only core|portability] [--json] [--profile <dir>]

const { values: flags } = parseArgs({
  args: process.argv.slice(2).filter((arg) => arg !== "--"),
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    json: { type: "boolean", default: false },
    profile: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (flags.help) {
  process.stdout.write(`usage: pnpm bench [--quick] [--only core|portability] [--json] [--profile <dir>]
  --quick          a smoke run: fewer calls, a 10 MB subject, 5 migrations
  --only <part>    run only the core (append, latency) or the portability measurements
  --json           print the results as one JSON document instead of tables
  --profile <dir>  run the export and the import server under node --cpu-prof, write
                   export.cpuprofile and import.cpuprofile to <dir>, and summarise them
Environment: BENCH_CLIENTS, BENCH_APPENDS, BENCH_LATENCY_SAMPLES, BENCH_PORTABILITY_MB,
  BENCH_PORTABILITY_DELTA_KB, BENCH_MIGRATION_RUNS, BENCH_MIGRATION_WRITERS,
  BENCH_MIGRATION_WRITE_INTERVAL_MS (see packages/reference-server/README.md)
`);
  process.exit(0);
}
if (flags.only !== undefined && flags.only !== "core" && flags.only !== "portability") {
  process.stderr.write(`--only must be core or portability, not ${flags.only}\n`);
  process.exit(2);
}
const QUICK = flags.quick;

const v1 = continuity.v1;
const envNumber = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, not ${raw}`);
  return value;
};
const CLIENTS = envNumber("BENCH_CLIENTS", QUICK ? 8 : 32);
const APPENDS_PER_CLIENT = envNumber("BENCH_APPENDS", QUICK ? 50 : 100);
const LATENCY_SAMPLES = envNumber("BENCH_LATENCY_SAMPLES", QUICK ? 100 : 300);
const TIME_CAP_MS = 20_000;
const PAYLOAD = Buffer.from(JSON.stringify({ lesson: 12, position: "00:12:34", done: false }));

function percentile(sortedMs: readonly number[], p: number): number {
  const index = Math.min(sortedMs.length - 1, Math.max(0, Math.ceil((p / 100) * sortedMs.length) - 1));
  return sortedMs[index] ?? Number.NaN;
}

function now(): number {
  return performance.now();
}

type Session = ContinuityServer["session"];

// --- the measurements ---------------------------------------------------------------------

interface Throughput {
  readonly calls: number;
  readonly seconds: number;
}

async function continuityAppendThroughput(session: Session): Promise<Throughput> {
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

async function continuityLatency(session: Session): Promise<number[]> {
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

async function warmUp(session: Session, echoAddress: string): Promise<void> {
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

interface CoreResult {
  readonly clients: number;
  readonly appendsPerClient: number;
  readonly latencySamples: number;
  readonly appendThroughput: { readonly continuityCallsPerSecond: number; readonly echoCallsPerSecond: number; readonly ratio: number };
  readonly latencyP50: { readonly continuityMs: number; readonly echoMs: number; readonly ratio: number };
  readonly latencyP99: { readonly continuityMs: number; readonly echoMs: number; readonly ratio: number };
}

function row(label: string, continuityValue: number, echoValue: number, unit: string, ratio: number): string {
  return `${label.padEnd(34)} ${continuityValue.toFixed(unit === "ms" ? 2 : 0).padStart(10)} ${unit.padEnd(9)} ${echoValue
    .toFixed(unit === "ms" ? 2 : 0)
    .padStart(10)} ${unit.padEnd(9)} ${(ratio * 100).toFixed(1).padStart(6)} %`;
}

function formatCore(core: CoreResult): string {
  const header = `${"".padEnd(34)} ${"continuity".padStart(20)} ${"grpc-js echo".padStart(20)}  ratio`;
  return [
    `Continuity reference server vs raw @grpc/grpc-js, loopback, ${core.clients} clients x ${core.appendsPerClient} appends, ${core.latencySamples} latency samples`,
    "(ratio: share of the baseline's throughput, or baseline latency / continuity latency; 100 % = as fast as the floor)",
    header,
    row("append throughput (calls/s)", core.appendThroughput.continuityCallsPerSecond, core.appendThroughput.echoCallsPerSecond, "calls/s", core.appendThroughput.ratio),
    row("append -> subscriber p50", core.latencyP50.continuityMs, core.latencyP50.echoMs, "ms", core.latencyP50.ratio),
    row("append -> subscriber p99", core.latencyP99.continuityMs, core.latencyP99.echoMs, "ms", core.latencyP99.ratio),
  ].join("\n");
}

async function runCore(dir: string): Promise<CoreResult> {
  const processes: ChildProcess[] = [];
  let continuityServer: ContinuityServer | undefined;
  try {
    continuityServer = await startContinuity(join(dir, "core"));
    const echo = await spawnReady(["bench/echo-server.ts"], {}, "ECHO_LISTENING=");
    processes.push(echo.child);

    // Warm both sides (JIT, connections, SQLite caches) before anything is measured.
    await warmUp(continuityServer.session, echo.address);
    const appends = await continuityAppendThroughput(continuityServer.session);
    const echoes = await echoThroughput(echo.address);
    const appendLatency = await continuityLatency(continuityServer.session);
    const publishLatency = await echoLatency(echo.address);
    const latency = (p: number) => {
      const continuityMs = percentile(appendLatency, p);
      const echoMs = percentile(publishLatency, p);
      return { continuityMs, echoMs, ratio: echoMs / continuityMs };
    };
    const continuityCallsPerSecond = appends.calls / appends.seconds;
    const echoCallsPerSecond = echoes.calls / echoes.seconds;
    return {
      clients: CLIENTS,
      appendsPerClient: APPENDS_PER_CLIENT,
      latencySamples: LATENCY_SAMPLES,
      appendThroughput: { continuityCallsPerSecond, echoCallsPerSecond, ratio: continuityCallsPerSecond / echoCallsPerSecond },
      latencyP50: latency(50),
      latencyP99: latency(99),
    };
  } finally {
    await continuityServer?.stop();
    await Promise.all(processes.map(stopProcess));
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "continuity-bench-"));
  const progress = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  const profileDir = flags.profile === undefined ? undefined : resolve(flags.profile);
  if (profileDir !== undefined) await mkdir(profileDir, { recursive: true });
  try {
    const core = flags.only === "portability" ? undefined : await runCore(dir);
    if (core !== undefined && !flags.json) process.stdout.write(`${formatCore(core)}\n`);
    let portability: PortabilityResult | undefined;
    if (flags.only !== "core") {
      portability = await runPortability(join(dir, "portability"), {
        subjectBytes: envNumber("BENCH_PORTABILITY_MB", QUICK ? 10 : 100) * 1e6,
        deltaBytes: envNumber("BENCH_PORTABILITY_DELTA_KB", 64) * 1024,
        streamCount: 4,
        migrationRuns: envNumber("BENCH_MIGRATION_RUNS", QUICK ? 5 : 20),
        writers: envNumber("BENCH_MIGRATION_WRITERS", 4),
        writeIntervalMs: envNumber("BENCH_MIGRATION_WRITE_INTERVAL_MS", 10),
        profileDir,
        progress,
      });
      if (!flags.json) process.stdout.write(`${core === undefined ? "" : "\n"}${formatPortability(portability)}\n`);
    }
    if (flags.json) {
      const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? "", node: process.version, platform: process.platform };
      process.stdout.write(`${JSON.stringify({ machine, quick: QUICK, core, portability }, null, 2)}\n`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
