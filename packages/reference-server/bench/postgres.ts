import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from "jose";
import { createChannel, createClientFactory, type Channel } from "nice-grpc";
import { Metadata } from "nice-grpc-common";
import pg from "pg";
import { continuity } from "@continuity/sdk/gen";
import { canonicalJson, materializeJsonState, type JsonValue } from "@continuity/sdk/protocol";
import { deltaHash, genesisHash } from "../src/services/hashing.js";
import { createPostgresStore } from "../src/store/postgres/pg-store.js";
import { Encoding, Policy, type ImportedDelta } from "../src/store/index.js";
import { smallPatch } from "./core-calls.js";
import { cpuSecondsOf } from "./rss.js";
import { percentile, row, summarize, type Row } from "./rows.js";
import { spawnReady, stopProcess, type Spawned } from "./servers.js";

// The PostgreSQL part of `pnpm bench` (issue 11), every ratio measured in the same run:
//
// - appends/s on PostgreSQL against SQLite, one server each, the same devices and deltas;
// - appends/s on two replicas of one PostgreSQL schema against one replica;
// - append → subscriber p50 / p99 with the writer and the subscriber on different replicas,
//   against the same replica;
// - a new device's catch-up after 1M deltas of history on PostgreSQL against 1k.
//
// Servers are processes started as `pnpm start` starts them, each on its own schema of
// DATABASE_URL (created by the server's migrations, dropped at the end). CPU is read from
// /proc: of every Continuity process, and of the PostgreSQL backends serving them (found by
// the application_name each deployment's URL sets), since SQLite does that work in-process.

const v1 = continuity.v1;

export interface PostgresOptions {
  readonly databaseUrl: string;
  readonly durability: "normal" | "full";
  readonly repeats: number;
  readonly clients: number;
  readonly appendsPerClient: number;
  readonly latencySamples: number;
  readonly timeCapMs: number;
  readonly catchUpShort: number;
  readonly catchUpLong: number;
  readonly catchUpCalls: number;
  readonly progress: (line: string) => void;
}

export interface PostgresResult {
  readonly settings: Record<string, number | string>;
  readonly rows: readonly Row[];
  /** How long the long history took to insert, and by which path. */
  readonly history: { readonly deltas: number; readonly seconds: number; readonly how: string };
}

const now = (): number => performance.now();

/** A platform key for the bench's assertions, and the file that makes servers trust it. */
async function benchPlatform(dir: string): Promise<{ platformsFile: string; privateKey: CryptoKey }> {
  await mkdir(dir, { recursive: true });
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "bench-1", alg: "ES256", use: "sig" };
  const platformsFile = join(dir, "platforms.json");
  await writeFile(platformsFile, JSON.stringify({ platforms: [{ id: "bench", jwks: { keys: [jwk] } }] }));
  return { platformsFile, privateKey };
}

/** One signed-in device on one server. */
interface Device {
  readonly subject: string;
  readonly subjectId: string;
  readonly stream: ReturnType<typeof clients>["stream"];
  readonly subscription: ReturnType<typeof clients>["subscription"];
}

function clients(channel: Channel, token: string) {
  const factory = createClientFactory().use(async function* (call, options) {
    return yield* call.next(call.request, { ...options, metadata: Metadata(options.metadata).set("authorization", `Bearer ${token}`) });
  });
  return { stream: factory.create(v1.StreamServiceDefinition, channel), subscription: factory.create(v1.SubscriptionServiceDefinition, channel) };
}

/** Servers of one store (one data directory, one platforms file): one, or several replicas. */
interface Deployment {
  readonly servers: readonly Spawned[];
  /** Signs `deviceId` of `account` in on server `index`, on a connection of its own. */
  device(index: number, deviceId: string, account: string): Promise<Device>;
  /** CPU seconds of the servers, and of their PostgreSQL backends by pid (empty on SQLite). */
  cpu(): Promise<{ servers: number; backends: Map<number, number> }>;
  stop(): Promise<void>;
}

const cpuOrNaN = (pid: number): number => {
  try {
    return cpuSecondsOf(pid);
  } catch {
    return Number.NaN; // the process ended
  }
};

/** Seconds spent between two readings; a backend that appeared meanwhile counts from its start. */
function cpuSpent(before: { servers: number; backends: Map<number, number> }, after: { servers: number; backends: Map<number, number> }) {
  let backends = 0;
  for (const [pid, seconds] of after.backends) if (Number.isFinite(seconds)) backends += seconds - (before.backends.get(pid) ?? 0);
  return { servers: after.servers - before.servers, backends };
}

async function startDeployment(dir: string, count: number, store: string | undefined, durability: string, monitor: pg.Client): Promise<Deployment> {
  const { platformsFile, privateKey } = await benchPlatform(dir);
  const env = {
    CONTINUITY_LISTEN: "127.0.0.1:0",
    CONTINUITY_DATA_DIR: join(dir, "data"),
    CONTINUITY_PLATFORMS: platformsFile,
    CONTINUITY_DURABILITY: durability,
    ...(store === undefined ? {} : { CONTINUITY_STORE: store }),
  };
  const servers: Spawned[] = [];
  // One after another: the first creates the schema and the signing key the others share.
  for (let i = 0; i < count; i++) servers.push(await spawnReady(["src/main.ts", "--log-level", "warn"], env, "CONTINUITY_LISTENING="));
  const channels: Channel[] = [];
  return {
    servers,
    async device(index, deviceId, account) {
      const channel = createChannel(servers[index]!.address);
      channels.push(channel);
      const iat = Math.floor(Date.now() / 1000);
      const assertion = await new SignJWT({ iss: "bench", aud: "continuity", sub: account, iat, exp: iat + 120, jti: randomUUID() })
        .setProtectedHeader({ alg: "ES256", typ: "continuity-assertion+jwt", kid: "bench-1" })
        .sign(privateKey);
      const { accessToken, subject } = await createClientFactory().create(v1.TokenServiceDefinition, channel).exchangeToken({
        grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
        subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
        subjectToken: assertion,
        scope: "",
        deviceId,
        deviceDisplayName: "",
      });
      return { subject, subjectId: subject.slice("subjects/".length), ...clients(channel, accessToken) };
    },
    async cpu() {
      const backends = new Map<number, number>();
      const name = store === undefined ? undefined : new URL(store).searchParams.get("application_name");
      if (name !== undefined && name !== null) {
        const { rows } = await monitor.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE application_name = $1", [name]);
        for (const { pid } of rows) backends.set(pid, cpuOrNaN(pid));
      }
      return { servers: servers.reduce((sum, s) => sum + cpuSecondsOf(s.child.pid!), 0), backends };
    },
    async stop() {
      for (const channel of channels) channel.close();
      await Promise.all(servers.map((s) => stopProcess(s.child)));
    },
  };
}

async function createStream(device: Device, id: string, encoding = v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH): Promise<string> {
  await device.stream.createStream({
    parent: device.subject,
    streamId: id,
    stream: { type: "org.example.bench", encoding, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  const name = `${device.subject}/streams/${id}`;
  if (encoding === v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH) {
    await device.stream.appendDeltas({ stream: name, deltas: [{ payload: Buffer.from('[{"op":"add","path":"/position","value":""}]') }], clientSequence: 1n });
  }
  return name;
}

interface Writer {
  readonly device: Device;
  readonly stream: string;
  next: bigint;
}

/** `clients` devices of their own subjects, each with its stream, spread evenly over the deployment's servers. */
async function writersOn(deployment: Deployment, count: number, prefix: string): Promise<Writer[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const device = await deployment.device(i % deployment.servers.length, `${prefix}-${i}`, `${prefix}-${i}`);
      return { device, stream: await createStream(device, `${prefix}-${i}`), next: 2n };
    }),
  );
}

/** Every writer appends 1-delta JSON Patches, one call at a time each; calls/s and server CPU per call. */
interface AppendRun {
  readonly perSecond: number;
  /** CPU µs per call of the Continuity processes. */
  readonly cpuMicros: number;
  /** The same plus their PostgreSQL backends. */
  readonly totalCpuMicros: number;
}

async function appendRun(deployment: Deployment, writers: readonly Writer[], options: PostgresOptions): Promise<AppendRun> {
  const deadline = now() + options.timeCapMs;
  let calls = 0;
  const cpuBefore = await deployment.cpu();
  const started = now();
  await Promise.all(
    writers.map(async (w) => {
      for (let i = 0; i < options.appendsPerClient && now() < deadline; i++) {
        await w.device.stream.appendDeltas({ stream: w.stream, deltas: [{ payload: smallPatch(i) }], clientSequence: w.next });
        w.next++;
        calls++;
      }
    }),
  );
  const seconds = (now() - started) / 1000;
  const spent = cpuSpent(cpuBefore, await deployment.cpu());
  return { perSecond: calls / seconds, cpuMicros: (spent.servers * 1e6) / calls, totalCpuMicros: ((spent.servers + spent.backends) * 1e6) / calls };
}

/** Sequential appends by `writer`, each timed until `reader`'s subscription delivers it. */
async function latencyRun(writer: Writer, reader: Device, samples: number, timeCapMs: number): Promise<{ p50: number; p99: number }> {
  const abort = new AbortController();
  const waiters = new Map<bigint, () => void>();
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const reading = (async () => {
    try {
      for await (const message of reader.subscription.subscribe({ parent: reader.subject, cursor: "", heartbeatSeconds: 300 }, { signal: abort.signal })) {
        if (message.event?.$case === "ready") ready();
        if (message.event?.$case === "deltasAppended") for (const delta of message.event.value.deltas) waiters.get(delta.version)?.();
      }
    } catch {
      // Aborted at the end of the run.
    }
  })();
  await isReady;
  const head = (await writer.device.stream.getStream({ name: writer.stream })).stream!.headVersion;
  const times: number[] = [];
  const deadline = now() + timeCapMs;
  for (let i = 1; i <= samples && now() < deadline; i++) {
    const received = new Promise<void>((resolve) => waiters.set(head + BigInt(i), resolve));
    const started = now();
    await writer.device.stream.appendDeltas({ stream: writer.stream, deltas: [{ payload: smallPatch(i) }], clientSequence: writer.next });
    writer.next++;
    await received;
    times.push(now() - started);
    waiters.delete(head + BigInt(i));
  }
  abort.abort();
  await reading;
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99) };
}

/** A new device's catch-up: the state at the head (every chunk), then Subscribe until ready. */
async function catchUp(device: Device, stream: string): Promise<number> {
  const started = now();
  for await (const part of device.stream.getSnapshot({ stream })) void part;
  const abort = new AbortController();
  for await (const message of device.subscription.subscribe({ parent: device.subject, cursor: "", heartbeatSeconds: 300 }, { signal: abort.signal })) {
    if (message.event?.$case === "ready") break;
  }
  abort.abort();
  return now() - started;
}

/** `{"p":n}`: the merge patches of the catch-up histories, as the core bench writes them. */
const historyPatch = (n: number): Buffer => Buffer.from(`{"p":${n}}`);

/** Appends `count` merge patches to `stream` in batches of 500 (the short history). */
async function appendHistory(device: Device, stream: string, count: number): Promise<void> {
  for (let done = 0, sequence = 1n; done < count; sequence++) {
    const size = Math.min(500, count - done);
    await device.stream.appendDeltas({ stream, deltas: Array.from({ length: size }, (_, j) => ({ payload: historyPatch(done + j) })), clientSequence: sequence });
    done += size;
  }
}

/**
 * The long history, inserted through the store's import path (`importStream` and
 * `importDeltas` of the PostgreSQL store, what ImportBundle calls once a bundle verified):
 * the same rows and events an import writes, in transactions of 10,000 deltas, then one
 * stored state at the head (as the server's storage rule stores one), with the hash chain computed here as the server computes it. It skips only
 * the bundle's framing, signature and gRPC, which `--only portability` measures. The deltas
 * are the device's, numbered like appends of 500-delta batches.
 */
async function importHistory(storeUrl: string, device: Device, deviceId: string, streamId: string, count: number, progress: (line: string) => void): Promise<void> {
  const store = await createPostgresStore({ url: storeUrl, poolSize: 2, durability: "normal" });
  try {
    const uid = randomUUID();
    const type = "org.example.bench";
    const encoding = v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;
    const genesis = genesisHash({ uid, type, encoding });
    const created = await store.importStream({
      subjectId: device.subjectId,
      id: streamId,
      uid,
      type,
      encoding: Encoding.JsonMergePatch,
      conflictPolicy: Policy.AllowBlindAppend,
      ownerPlatformId: "bench",
      genesisHash: genesis,
      horizonVersion: 0,
      horizonHash: genesis,
      base: { kind: "json", state: canonicalJson({}) },
      createdAt: new Date(),
      maxStreamsPerSubject: 1000,
      now: new Date(),
    });
    if (created.kind !== "created") throw new Error(`importStream: ${created.kind}`);
    let prevHash = genesis;
    let state: JsonValue = {};
    const chunk = 10_000;
    for (let first = 1; first <= count; first += chunk) {
      const deltas: ImportedDelta[] = [];
      const committedAt = new Date();
      for (let version = first; version < first + chunk && version <= count; version++) {
        const payload = historyPatch(version);
        const hash = deltaHash({ prevHash, version, encoding, payload });
        const batchFirstVersion = version - ((version - 1) % 500);
        deltas.push({ version, payload, prevHash, hash, deviceId, clientSequence: (batchFirstVersion - 1) / 500 + 1, batchFirstVersion, batchSize: Math.min(500, count - batchFirstVersion + 1), committedAt });
        prevHash = hash;
      }
      const result = await store.importDeltas({
        subjectId: device.subjectId,
        streamId,
        streamUid: uid,
        deltas,
        // The store keeps no state per import; the state at the end is stored below, as the
        // server's storage rule would store one.
        stateAfter: (_head, fresh) => {
          state = materializeJsonState(state, encoding as never, fresh.map((d) => d.payload));
        },
        now: new Date(),
      });
      if (result.kind !== "imported" || result.imported !== deltas.length) throw new Error(`importDeltas at ${first}: ${result.kind}`);
      if (first % 100_000 === 1 && first > 1) progress(`  history: ${first - 1} of ${count} deltas`);
    }
    await store.putJsonState({ subjectId: device.subjectId, streamId, streamUid: uid, version: count, state: canonicalJson(state) });
  } finally {
    await store.close();
  }
}

/** Waits until `pid` spends under 5 % of a core over a second; returns the milliseconds waited. */
async function untilIdle(pid: number, capMs: number): Promise<number> {
  const started = now();
  for (let last = cpuSecondsOf(pid); now() - started < capMs; ) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const current = cpuSecondsOf(pid);
    if (current - last < 0.05) break;
    last = current;
  }
  return now() - started;
}

/** A fresh schema name of this run, and a way to drop them all. */
function schemas(databaseUrl: string) {
  const made: string[] = [];
  return {
    url(): string {
      const schema = `bench_${randomBytes(6).toString("hex")}`;
      made.push(schema);
      const url = new URL(databaseUrl);
      url.searchParams.set("schema", schema);
      // So that the bench finds this deployment's backends in pg_stat_activity.
      url.searchParams.set("application_name", schema);
      return url.toString();
    },
    async dropAll(client: pg.Client): Promise<void> {
      for (const schema of made) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    },
  };
}

export async function runPostgres(dir: string, options: PostgresOptions): Promise<PostgresResult> {
  const { progress } = options;
  const schema = schemas(options.databaseUrl);
  const monitor = new pg.Client({ connectionString: options.databaseUrl });
  await monitor.connect();
  const deployments: Deployment[] = [];
  const start = async (name: string, count: number, store: string | undefined) => {
    const deployment = await startDeployment(join(dir, name), count, store, options.durability, monitor);
    deployments.push(deployment);
    return deployment;
  };
  const rows: Row[] = [];
  let history = { deltas: options.catchUpLong, seconds: Number.NaN, how: "" };
  try {
    // 1. The same appends on SQLite and on PostgreSQL, one server each.
    progress(`postgres: appends on PostgreSQL vs SQLite, ${options.clients} devices x ${options.appendsPerClient}, ${options.repeats} repeats`);
    const sqlite = await start("sqlite", 1, undefined);
    const pgOne = await start("pg-one", 1, schema.url());
    const sqliteWriters = await writersOn(sqlite, options.clients, "w");
    const pgWriters = await writersOn(pgOne, options.clients, "w");
    const onSqlite: AppendRun[] = [];
    const onPg: AppendRun[] = [];
    // Warm-up, not counted: connections, caches, JIT.
    const warmUp = { ...options, appendsPerClient: Math.min(10, options.appendsPerClient) };
    await appendRun(pgOne, pgWriters, warmUp);
    await appendRun(sqlite, sqliteWriters, warmUp);
    for (let r = 0; r < options.repeats; r++) {
      onPg.push(await appendRun(pgOne, pgWriters, options));
      onSqlite.push(await appendRun(sqlite, sqliteWriters, options));
    }
    rows.push(
      row("pg-append-rate", `1-delta appends/s, ${options.clients} devices, PostgreSQL`, "calls/s", summarize(onPg.map((t) => t.perSecond)), "SQLite, same workload", summarize(onSqlite.map((t) => t.perSecond))),
      row("pg-append-cpu", "CPU per append, server + its PostgreSQL backends", "us", summarize(onPg.map((t) => t.totalCpuMicros)), "SQLite server", summarize(onSqlite.map((t) => t.cpuMicros))),
      row("pg-append-server-cpu", "CPU per append, server process alone", "us", summarize(onPg.map((t) => t.cpuMicros)), "SQLite server", summarize(onSqlite.map((t) => t.cpuMicros))),
    );
    await sqlite.stop();

    // 2. Two replicas of one schema against one: devices spread evenly, each on its own connection.
    progress(`postgres: appends on 2 replicas vs 1`);
    const pgTwo = await start("pg-two", 2, schema.url());
    const twoWriters = await writersOn(pgTwo, options.clients, "w");
    const onTwo: AppendRun[] = [];
    const onOne: AppendRun[] = [];
    await appendRun(pgTwo, twoWriters, warmUp);
    for (let r = 0; r < options.repeats; r++) {
      onTwo.push(await appendRun(pgTwo, twoWriters, options));
      onOne.push(await appendRun(pgOne, pgWriters, options));
    }
    rows.push(
      row("pg-replicas-rate", `1-delta appends/s, ${options.clients} devices, 2 replicas`, "calls/s", summarize(onTwo.map((t) => t.perSecond)), "1 replica", summarize(onOne.map((t) => t.perSecond))),
      row("pg-replicas-cpu", "CPU per append, all replicas + their PostgreSQL backends", "us", summarize(onTwo.map((t) => t.totalCpuMicros)), "1 replica", summarize(onOne.map((t) => t.totalCpuMicros))),
    );

    // 3. Append -> subscriber, through NOTIFY to the other replica vs within one.
    progress(`postgres: append -> subscriber on the other replica vs the same, ${options.latencySamples} samples, ${options.repeats} repeats`);
    const writerDevice = await pgTwo.device(0, "latency-writer", "latency");
    const writer: Writer = { device: writerDevice, stream: await createStream(writerDevice, "latency"), next: 2n };
    const sameReplica = await pgTwo.device(0, "latency-reader", "latency");
    const otherReplica = await pgTwo.device(1, "latency-reader", "latency");
    const across: { p50: number; p99: number }[] = [];
    const within: { p50: number; p99: number }[] = [];
    for (let r = 0; r < options.repeats; r++) {
      across.push(await latencyRun(writer, otherReplica, options.latencySamples, options.timeCapMs));
      within.push(await latencyRun(writer, sameReplica, options.latencySamples, options.timeCapMs));
    }
    rows.push(
      row("pg-latency-p50", "append -> subscriber p50, writer and subscriber on different replicas", "ms", summarize(across.map((l) => l.p50)), "same replica", summarize(within.map((l) => l.p50))),
      row("pg-latency-p99", "append -> subscriber p99, different replicas", "ms", summarize(across.map((l) => l.p99)), "same replica", summarize(within.map((l) => l.p99))),
    );
    await pgTwo.stop();

    // 4. A new device's catch-up after a short and a long history on PostgreSQL.
    progress(`postgres: catch-up of a new device: ${options.catchUpShort} and ${options.catchUpLong} deltas of history`);
    const historyUrl = schema.url();
    const historyServer = await start("pg-history", 1, historyUrl);
    const owner = await historyServer.device(0, "history-owner", "history-user");
    const short = await createStream(owner, `history-${options.catchUpShort}`, v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH);
    await appendHistory(owner, short, options.catchUpShort);
    const longId = `history-${options.catchUpLong}`;
    const started = now();
    await importHistory(historyUrl, owner, "history-owner", longId, options.catchUpLong, progress);
    history = { deltas: options.catchUpLong, seconds: (now() - started) / 1000, how: "the PostgreSQL store's importStream/importDeltas (the ImportBundle path without framing and gRPC), 10,000 deltas per transaction" };
    progress(`  ${options.catchUpLong} deltas imported in ${history.seconds.toFixed(1)} s`);
    // The server reads the imported events back from the log, as a replica does for another's
    // commits; catch-up is measured once it has done so (or after two minutes).
    const idle = await untilIdle(historyServer.servers[0]!.child.pid!, 120_000);
    progress(`  the server read the import back for ${(idle / 1000).toFixed(1)} s`);
    const newDevice = await historyServer.device(0, "history-new-device", "history-user");
    const long = `${owner.subject}/streams/${longId}`;
    // The imported stream is whole: its head is the long history's last version.
    const head = (await newDevice.stream.getStream({ name: long })).stream!.headVersion;
    if (head !== BigInt(options.catchUpLong)) throw new Error(`the imported history's head is ${head}, not ${options.catchUpLong}`);
    const shortTimes: number[] = [];
    const longTimes: number[] = [];
    for (let r = 0; r < options.repeats; r++) {
      const times: [number[], number[]] = [[], []];
      for (let i = 0; i < options.catchUpCalls; i++) {
        times[0].push(await catchUp(newDevice, short));
        times[1].push(await catchUp(newDevice, long));
      }
      shortTimes.push(percentile(times[0].sort((a, b) => a - b), 50));
      longTimes.push(percentile(times[1].sort((a, b) => a - b), 50));
    }
    rows.push(
      row("pg-catch-up", `new device catch-up on PostgreSQL, ${options.catchUpLong} vs ${options.catchUpShort} deltas of history`, "ms", summarize(longTimes), `${options.catchUpShort} deltas`, summarize(shortTimes), { atMost: 1.2 }),
    );
    return {
      settings: {
        durability: options.durability,
        clients: options.clients,
        appendsPerClient: options.appendsPerClient,
        latencySamples: options.latencySamples,
        repeats: options.repeats,
        catchUpShort: options.catchUpShort,
        catchUpLong: options.catchUpLong,
      },
      rows,
      history,
    };
  } finally {
    for (const deployment of deployments) await deployment.stop();
    await schema.dropAll(monitor);
    await monitor.end();
  }
}
