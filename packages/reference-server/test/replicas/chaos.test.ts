// Replicas as real processes on one PostgreSQL schema, behind the per-call round-robin proxy,
// killed with -9 and started again, over and over, while devices append batches to two
// streams and other devices subscribe. What must hold whatever was killed when:
//
// - every acknowledged write is in the log exactly once, where it was acknowledged, and each
//   device's writes are in the order of its client sequences (an unanswered append is retried,
//   unchanged, until some replica answers it: APPEND-013);
// - each subscriber, resuming from its last cursor on whichever replica the proxy picks, saw
//   every version of every stream exactly once, in order, with no gap;
// - each stream's head hash equals the chain recomputed from ListDeltas.
//
// CI runs a few cycles (~30–60 s). The long mode is a dedicated run:
//
//   CHAOS_CYCLES=50 npx --yes pnpm@10.34.8 exec vitest run --project reference-server-postgres test/replicas/chaos.test.ts
//
// CHAOS_REPLICAS (default 2) sets how many replicas run; each kill takes the longest-lived one.
// CHAOS_SEED replays the same downtimes and batch sizes (the timing of a kill within them
// still varies).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ClientError, createChannel, createClientFactory, Status, type Channel } from "nice-grpc";
import { Metadata } from "nice-grpc-common";
import { afterAll, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { bytesEqual, toHex, verifyChain } from "@continuity/sdk/protocol";
import { startRoundRobinProxy, type RoundRobinProxy } from "../../src/ops/round-robin-proxy.js";
import { dropSchema, freshSchemaName, TEST_DATABASE_URL } from "../../src/testing/postgres.js";
import { createTestPlatform, type TestPlatform } from "../../src/testing/test-platform.js";
import { spawnServer, type ServerProcess } from "../ops/server-process.js";

const v1 = continuity.v1;

const CYCLES = positiveInteger("CHAOS_CYCLES") ?? 4;
const REPLICAS = positiveInteger("CHAOS_REPLICAS") ?? 2;
const SEED = positiveInteger("CHAOS_SEED") ?? Math.floor(Math.random() * 2 ** 31);
const WRITERS = 3;
const READERS = 2;
const MAX_BATCH = 4;
/** Acknowledged batches between a replica's return and the next kill: at least this many. */
const ACKS_BETWEEN_KILLS = 20;
/** How long a killed replica stays down: up to this many ms. */
const MAX_DOWNTIME_MS = 600;
/** One call's deadline: a call the proxy cannot answer within it has an unknown outcome. */
const CALL_TIMEOUT_MS = 8_000;

function positiveInteger(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === "") return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return value;
}

/** mulberry32, as in the crash test. */
function createRandom(seed: number): (below: number) => number {
  let state = seed >>> 0;
  return (below) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * below);
  };
}

const STREAMS = [
  { id: "journal", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH },
  { id: "log", encoding: v1.DeltaEncoding.DELTA_ENCODING_OPAQUE },
] as const;

/**
 * What a call that failed through the proxy while a replica died means: the outcome is
 * unknown, and the same request may be sent again. UNAVAILABLE is what a client sees when its
 * call's replica is gone; a deadline or an abort of our own is the same uncertainty. Anything
 * else is an answer, and fails the test.
 */
function isRetryable(error: unknown): boolean {
  if (error instanceof ClientError) return error.code === Status.UNAVAILABLE || error.code === Status.DEADLINE_EXCEEDED;
  return error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError");
}

function describe_(error: unknown): string {
  return error instanceof ClientError ? `${Status[error.code]}: ${error.details}` : String(error);
}

function clientsAs(channel: Channel, token: string) {
  const factory = createClientFactory().use(async function* (call, options) {
    return yield* call.next(call.request, { ...options, metadata: Metadata(options.metadata).set("authorization", `Bearer ${token}`) });
  });
  return { stream: factory.create(v1.StreamServiceDefinition, channel), subscription: factory.create(v1.SubscriptionServiceDefinition, channel) };
}

/** Retries `call` on an unknown outcome until it answers; counts the retries. */
async function untilAnswered<T>(call: (signal: AbortSignal) => Promise<T>, retries: { count: number; codes: Map<string, number> }): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await call(AbortSignal.timeout(CALL_TIMEOUT_MS));
    } catch (error) {
      if (!isRetryable(error)) throw error;
      retries.count += 1;
      const code = error instanceof ClientError ? Status[error.code] : String((error as Error).name);
      retries.codes.set(code, (retries.codes.get(code) ?? 0) + 1);
      if (attempt > 400) throw new Error(`no replica answered after ${attempt} attempts: ${describe_(error)}`);
      await sleep(Math.min(200, 10 * (attempt + 1)));
    }
  }
}

const keyOf = (stream: string, device: string, sequence: bigint, index: number) => `${stream} ${device}#${sequence}#${index}`;

describe("replicas under kill -9", () => {
  const processes: ServerProcess[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    processes.forEach((p) => p.kill());
    await Promise.all(processes.map((p) => p.exited()));
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it("lose no acknowledged write, and every subscriber sees every version once, while replicas are killed and restarted", async () => {
    console.info(`chaos test: ${CYCLES} kills of ${REPLICAS} replicas, CHAOS_SEED=${SEED}`);
    const random = createRandom(SEED);
    const dataDir = await mkdtemp(join(tmpdir(), "continuity-chaos-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const schema = freshSchemaName();
    cleanups.push(() => dropSchema(schema));
    const storeUrl = new URL(TEST_DATABASE_URL);
    storeUrl.searchParams.set("schema", schema);
    const platform: TestPlatform = await createTestPlatform("chaos-platform");
    const platformsFile = join(dataDir, "platforms.json");
    await writeFile(platformsFile, JSON.stringify({ platforms: [{ id: platform.id, jwks: platform.config.jwks }] }));
    // One data directory (one signing key) and one schema: what `start --replicas` gives each replica.
    const env = { CONTINUITY_LISTEN: "127.0.0.1:0", CONTINUITY_DATA_DIR: dataDir, CONTINUITY_PLATFORMS: platformsFile, CONTINUITY_STORE: storeUrl.toString() };

    const live: (ServerProcess & { address: string })[] = [];
    let proxy: RoundRobinProxy | undefined;
    const route = () => proxy?.setReplicas(live.map((r) => r.address));
    const startReplica = async () => {
      const server = spawnServer(["--log-level", "error"], env);
      processes.push(server);
      const replica = Object.assign(server, { address: await server.ready(30_000) });
      live.push(replica);
      route();
      return replica;
    };
    // One after another, as the supervisor does: the first creates the schema and the signing key.
    for (let i = 0; i < REPLICAS; i++) await startReplica();
    proxy = await startRoundRobinProxy(live.map((r) => r.address));
    cleanups.push(() => proxy!.close());
    const channel = createChannel(proxy.address);
    cleanups.push(async () => channel.close());
    const retries = { count: 0, codes: new Map<string, number>() };

    const signIn = (deviceId: string) =>
      untilAnswered(
        async (signal) =>
          createClientFactory()
            .create(v1.TokenServiceDefinition, channel)
            .exchangeToken(
              {
                grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
                subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
                subjectToken: await platform.assertion("chaos-user"),
                scope: "",
                deviceId,
                deviceDisplayName: "",
              },
              { signal },
            ),
        retries,
      );
    const writerIds = Array.from({ length: WRITERS }, (_, i) => `writer-${i}`);
    const readerIds = Array.from({ length: READERS }, (_, i) => `reader-${i}`);
    const sessions = new Map<string, continuity.v1.ExchangeTokenResponse>();
    for (const device of [...writerIds, ...readerIds]) sessions.set(device, await signIn(device));
    const subject = sessions.get(writerIds[0]!)!.subject;
    expect([...sessions.values()].every((s) => s.subject === subject)).toBe(true);
    const clientOf = (device: string) => clientsAs(channel, sessions.get(device)!.accessToken);
    for (const stream of STREAMS) {
      await clientOf(writerIds[0]!).stream.createStream({
        parent: subject,
        streamId: stream.id,
        stream: { type: `org.example.${stream.id}`, encoding: stream.encoding, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
      });
    }
    const streamName = (id: string) => `${subject}/streams/${id}`;

    // Subscribers: from the start of the feed, resuming from their last cursor after any failure.
    let stopping = false;
    const readers = readerIds.map((device) => {
      const seen = new Map<string, continuity.v1.Delta[]>(STREAMS.map((s) => [streamName(s.id), []]));
      const state = { device, seen, cursor: "", resumes: 0, abort: new AbortController() };
      let markReady = () => {};
      const ready = new Promise<void>((resolve) => (markReady = resolve));
      const done = (async () => {
        const { subscription } = clientOf(device);
        while (!stopping) {
          try {
            for await (const message of subscription.subscribe({ parent: subject, cursor: state.cursor, heartbeatSeconds: 1 }, { signal: state.abort.signal })) {
              const event = message.event;
              if (event?.$case === "ready") markReady();
              if (event?.$case === "reset") throw new Error(`${device} got a reset resuming from ${state.cursor}: ${JSON.stringify(event.value)}`);
              if (event?.$case === "deltasAppended") {
                for (const delta of event.value.deltas) seen.get(delta.stream)?.push(delta);
              }
              if (message.cursor !== "") state.cursor = message.cursor;
            }
            if (!stopping) throw new Error(`${device}'s subscription completed by itself`);
          } catch (error) {
            if (stopping) return;
            if (!isRetryable(error)) throw new Error(`${device}'s subscription failed: ${describe_(error)}`, { cause: error });
            state.resumes += 1;
            await sleep(20);
          }
        }
      })();
      done.catch(() => undefined); // awaited below
      return Object.assign(state, { ready, done });
    });
    // A subscription from an empty cursor starts at the present: the writers wait for them.
    await Promise.race([Promise.all(readers.map((r) => r.ready)), ...readers.map((r) => r.done)]);

    // Writers: each device appends batches to both streams, one client sequence per stream.
    const acks = new Map<string, { version: bigint; hash: Uint8Array }>();
    const sent = new Map<string, Uint8Array>();
    let acknowledged = 0;
    let writing = true;
    let replays = 0;
    /** Appenders that resend their next acknowledged request once, after a replica came back. */
    const resendAfterRestart = new Set<number>();
    let resent = 0;
    const sizes = Array.from({ length: 4096 }, () => 1 + random(MAX_BATCH));
    const appenders = writerIds.flatMap((device) => STREAMS.map((stream) => ({ device, stream, next: 1n })));
    const writers = appenders.map(async (appender, a) => {
      const { stream: client } = clientOf(appender.device);
      for (let n = 0; writing; n++) {
        const sequence = appender.next;
        const deltas = Array.from({ length: sizes[(a * 131 + n) % sizes.length]! }, (_, index) => {
          const text =
            appender.stream.encoding === v1.DeltaEncoding.DELTA_ENCODING_OPAQUE
              ? `${appender.device}/${sequence}/${index}`
              : JSON.stringify({ [appender.device]: { index, sequence: Number(sequence) } });
          const payload = Buffer.from(text);
          sent.set(keyOf(appender.stream.id, appender.device, sequence, index), payload);
          return { payload };
        });
        const request = { stream: streamName(appender.stream.id), deltas, clientSequence: sequence };
        // The same request until a replica answers it: a replay if the dead one had committed it.
        const response = await untilAnswered((signal) => client.appendDeltas(request, { signal }), retries);
        if (response.replayed) replays += 1;
        expect(response.receipts.length).toBe(deltas.length);
        response.receipts.forEach((receipt, index) => {
          const key = keyOf(appender.stream.id, appender.device, sequence, index);
          expect(acks.has(key), `${key} acknowledged twice`).toBe(false);
          acks.set(key, { version: receipt.version, hash: receipt.hash });
        });
        acknowledged += 1;
        appender.next = sequence + 1n;
        if (resendAfterRestart.delete(a)) {
          // A retry through the proxy, so likely through another replica than the answer came
          // from, possibly the one just restarted: the stored outcome, nothing appended.
          const again = await untilAnswered((signal) => client.appendDeltas(request, { signal }), retries);
          expect(again.replayed, `${appender.device}#${sequence} was appended again`).toBe(true);
          expect(again.receipts.map((r) => [r.version, toHex(r.hash)])).toEqual(response.receipts.map((r) => [r.version, toHex(r.hash)]));
          resent += 1;
        }
      }
    });

    let writerError: unknown;
    const untilAcks = async (count: number, what: string) => {
      const deadline = Date.now() + 60_000;
      while (acknowledged < count) {
        if (writerError !== undefined) throw writerError;
        if (Date.now() > deadline) throw new Error(`only ${acknowledged} of ${count} batches acknowledged ${what}; retries ${JSON.stringify([...retries.codes])}`);
        await sleep(10);
      }
    };

    // The chaos: kill a replica with -9 mid-load, take it out of the proxy as a balancer's
    // health check would, leave it down a while, start it again and put it back.
    const kills: string[] = [];
    const writersDone = Promise.all(writers).catch((error: unknown) => {
      writerError = error;
    });
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      await untilAcks(acknowledged + ACKS_BETWEEN_KILLS, `before kill ${cycle + 1}`);
      // The longest-lived replica: it holds the subscriptions that resumed on it after the last kill.
      const index = 0;
      const victim = live[index]!;
      victim.child.kill("SIGKILL");
      expect(await victim.exited()).toBe("SIGKILL");
      live.splice(index, 1);
      route();
      kills.push(`replica on ${victim.address} at ${acknowledged} batches`);
      await sleep(random(MAX_DOWNTIME_MS));
      await startReplica();
      appenders.forEach((_, a) => resendAfterRestart.add(a));
    }
    await untilAcks(acknowledged + ACKS_BETWEEN_KILLS, "after the last kill");
    writing = false;
    await writersDone;
    if (writerError !== undefined) throw writerError;

    // Everything is read back through the proxy, so through every replica.
    const reader = clientOf(writerIds[0]!).stream;
    const heads = new Map<string, continuity.v1.Stream>();
    const stored = new Map<string, continuity.v1.Delta[]>();
    for (const { id, encoding } of STREAMS) {
      const name = streamName(id);
      const stream = (await untilAnswered((signal) => reader.getStream({ name }, { signal }), retries)).stream!;
      heads.set(name, stream);
      const deltas: continuity.v1.Delta[] = [];
      for (let pageToken = "", first = true; first || pageToken !== ""; first = false) {
        const page = await untilAnswered((signal) => reader.listDeltas({ stream: name, afterVersion: 0n, pageSize: 500, pageToken }, { signal }), retries);
        deltas.push(...page.deltas);
        pageToken = page.nextPageToken;
      }
      stored.set(name, deltas);
      expect(deltas.map((d) => d.version)).toEqual(Array.from({ length: Number(stream.headVersion) }, (_, i) => BigInt(i + 1)));
      const verification = verifyChain({ start: { version: stream.horizonVersion, hash: stream.horizonHash }, encoding, deltas });
      expect(verification.ok, `${id}: the chain does not verify`).toBe(true);
      if (verification.ok) expect(toHex(verification.headHash), `${id}: head hash`).toBe(toHex(stream.headHash));

      const byKey = new Map<string, continuity.v1.Delta>();
      for (const delta of deltas) {
        const device = delta.device.split("/").pop()!;
        const key = keyOf(id, device, delta.clientSequence, Number(delta.version - delta.batchFirstVersion));
        expect(byKey.has(key), `${key} is stored twice`).toBe(false);
        byKey.set(key, delta);
        const payload = sent.get(key);
        expect(payload !== undefined && bytesEqual(delta.payload, payload), `${key} holds bytes no attempt sent`).toBe(true);
        const ack = acks.get(key);
        expect(ack, `${key} is stored but was never acknowledged`).toBeDefined();
        expect(delta.version, `${key} is stored elsewhere than acknowledged`).toBe(ack!.version);
        expect(bytesEqual(delta.hash, ack!.hash)).toBe(true);
      }
      // In order: each device's batches follow its client sequences, 1, 2, 3 … with no hole.
      for (const device of writerIds) {
        const sequences = deltas.filter((d) => d.device.endsWith(`/devices/${device}`) && d.version === d.batchFirstVersion).map((d) => d.clientSequence);
        expect(sequences, `${id} ${device}`).toEqual(sequences.map((_, i) => BigInt(i + 1)));
      }
    }
    // Every acknowledged delta is stored (checked above where it is stored; here that none is missing).
    const storedCount = [...stored.values()].reduce((n, deltas) => n + deltas.length, 0);
    expect(storedCount).toBe(acks.size);

    // The subscribers catch up to every head, then each saw each version once, in order, as stored.
    const deadline = Date.now() + 30_000;
    const caughtUp = () => readers.every((r) => [...heads].every(([name, head]) => (r.seen.get(name)!.at(-1)?.version ?? 0n) >= head.headVersion));
    while (!caughtUp() && Date.now() < deadline) await sleep(20);
    stopping = true;
    for (const r of readers) r.abort.abort();
    await Promise.all(readers.map((r) => r.done));
    for (const r of readers) {
      for (const [name, deltas] of stored) {
        const seen = r.seen.get(name)!;
        expect(
          seen.map((d) => d.version),
          `${r.device} on ${name}`,
        ).toEqual(deltas.map((d) => d.version));
        expect(seen.every((d, i) => bytesEqual(d.hash, deltas[i]!.hash)), `${r.device} saw other hashes on ${name}`).toBe(true);
      }
    }

    // The kills did reach what they were meant to: subscriptions resumed, retries replayed.
    expect(readers.reduce((n, r) => n + r.resumes, 0)).toBeGreaterThan(0);
    expect(resent).toBeGreaterThan(0);
    console.info(
      `chaos test: ${kills.length} kills (${kills.join("; ")}); ${acks.size} deltas in ${acknowledged} batches acknowledged, ` +
        `${replays} retries answered from the stored outcome, ${resent} deliberate resends too; ${retries.count} retried calls (${[...retries.codes].map(([c, n]) => `${c} ${n}`).join(", ")}); ` +
        `subscribers resumed ${readers.map((r) => r.resumes).join(" and ")} times (CHAOS_SEED=${SEED})`,
    );
    for (const replica of live) replica.child.kill("SIGTERM");
    for (const replica of live) expect(await replica.exited()).toBe(0);
  }, 90_000 + CYCLES * 20_000);
});
