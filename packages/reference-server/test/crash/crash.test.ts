// kill -9 of the real server process, again and again, while concurrent appenders write
// multi-delta batches to two streams: nothing acknowledged may be lost or doubled, no batch
// may be stored in part, every retry of an unanswered append must come out exactly once, and
// both hash chains must verify from genesis to head.
//
// CI runs a few cycles in seconds. The long mode is a dedicated run:
//
//   CRASH_CYCLES=100 npx --yes pnpm@10.34.8 exec vitest run --project reference-server test/crash
//
// Kill points and batch sizes come from a seeded generator; a failure names its CRASH_SEED,
// which replays the same choices (the timing of the kill within them still varies).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChannel, createClientFactory, type Channel } from "nice-grpc";
import { Metadata } from "nice-grpc-common";
import { afterAll, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { bytesEqual, toHex, verifyChain } from "@continuity/sdk/protocol";
import { createTestPlatform, type TestPlatform } from "../../src/testing/test-platform.js";
import { spawnServer, type ServerProcess } from "../ops/server-process.js";

const v1 = continuity.v1;

const CYCLES = positiveInteger("CRASH_CYCLES") ?? 3;
const SEED = positiveInteger("CRASH_SEED") ?? Math.floor(Math.random() * 2 ** 31);
const DEVICES = 4;
/** Deltas in one batch: 1 to this many. */
const MAX_BATCH = 4;
/** Acknowledged batches of one life before the kill: between these two. */
const ACKS_BEFORE_KILL = [15, 60] as const;

function positiveInteger(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === "") return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(text)}`);
  return value;
}

/** mulberry32: small, seedable, good enough to pick kill points and batch sizes. */
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

/** One device writing to one stream, with its own client sequence (APPEND-011). */
interface Appender {
  readonly device: string;
  readonly stream: (typeof STREAMS)[number];
  next: bigint;
  /** The append whose answer the server died under: resent, unchanged, in the next life. */
  unanswered: continuity.v1.AppendDeltasRequest | undefined;
}

/** A delta the server acknowledged, identified by device, client sequence and place in its batch. */
interface Ack {
  readonly key: string;
  readonly version: bigint;
  readonly hash: Uint8Array;
}

const keyOf = (stream: string, device: string, sequence: bigint, index: number) => `${stream} ${device}#${sequence}#${index}`;
const streamIdOf = (name: string) => name.slice(name.lastIndexOf("/") + 1);

/** Canonical for merge patches (keys already sorted), unique per delta for opaque streams. */
function payloadOf(appender: Appender, sequence: bigint, index: number): Uint8Array {
  const text =
    appender.stream.encoding === v1.DeltaEncoding.DELTA_ENCODING_OPAQUE
      ? `${appender.device}/${sequence}/${index}`
      : JSON.stringify({ [appender.device]: { index, sequence: Number(sequence) } });
  return Buffer.from(text);
}

function clientsAs(channel: Channel, token: string) {
  const factory = createClientFactory().use(async function* (call, options) {
    return yield* call.next(call.request, { ...options, metadata: Metadata(options.metadata).set("authorization", `Bearer ${token}`) });
  });
  return factory.create(v1.StreamServiceDefinition, channel);
}

async function exchange(channel: Channel, platform: TestPlatform, deviceId: string): Promise<continuity.v1.ExchangeTokenResponse> {
  const token = createClientFactory().create(v1.TokenServiceDefinition, channel);
  return token.exchangeToken({
    grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
    subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
    subjectToken: await platform.assertion("crash-user"),
    scope: "",
    deviceId,
    deviceDisplayName: "",
  });
}

describe("crash safety", () => {
  const processes: ServerProcess[] = [];
  const dataDirs: string[] = [];
  afterAll(async () => {
    processes.forEach((p) => p.kill());
    await Promise.all(processes.map((p) => p.exited()));
    await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it("keeps every acknowledged batch exactly once across kill -9 cycles of concurrent multi-delta appends", async () => {
    console.info(`crash test: ${CYCLES} cycles, CRASH_SEED=${SEED}`);
    const random = createRandom(SEED);
    const dataDir = await mkdtemp(join(tmpdir(), "continuity-crash-"));
    dataDirs.push(dataDir);
    const platform = await createTestPlatform("crash-platform");
    const platformsFile = join(dataDir, "platforms.json");
    await writeFile(platformsFile, JSON.stringify({ platforms: [{ id: platform.id, jwks: platform.config.jwks }] }));
    const env = { CONTINUITY_LISTEN: "127.0.0.1:0", CONTINUITY_DATA_DIR: dataDir, CONTINUITY_PLATFORMS: platformsFile };

    const devices = Array.from({ length: DEVICES }, (_, i) => `writer-${i}`);
    const appenders: Appender[] = devices.flatMap((device) => STREAMS.map((stream) => ({ device, stream, next: 1n, unanswered: undefined })));
    const acks = new Map<string, Ack>();
    /** Every delta any attempt sent, by key: what a stored delta must carry. */
    const sent = new Map<string, Uint8Array>();
    let subject = "";
    let replays = 0;

    const record = (request: continuity.v1.AppendDeltasRequest, device: string, response: continuity.v1.AppendDeltasResponse) => {
      expect(response.receipts.length).toBe(request.deltas.length);
      response.receipts.forEach((receipt, index) => {
        const key = keyOf(streamIdOf(request.stream), device, request.clientSequence, index);
        expect(acks.has(key), `${key} acknowledged twice`).toBe(false);
        acks.set(key, { key, version: receipt.version, hash: receipt.hash });
      });
    };

    /** One life of the server: resend what the last one left unanswered, write, and (unless last) die. */
    const life = async (cycle: number, kill: boolean) => {
      const server = spawnServer(["--log-level", "warn"], env);
      processes.push(server);
      const channel = createChannel(await server.ready());
      try {
        const sessions = await Promise.all(devices.map((device) => exchange(channel, platform, device)));
        if (cycle === 0) {
          subject = sessions[0]!.subject;
          for (const stream of STREAMS) {
            await clientsAs(channel, sessions[0]!.accessToken).createStream({
              parent: subject,
              streamId: stream.id,
              stream: { type: `org.example.${stream.id}`, encoding: stream.encoding, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
            });
          }
        }
        expect(sessions.map((s) => s.subject)).toEqual(devices.map(() => subject));
        const clientOf = (device: string) => clientsAs(channel, sessions[devices.indexOf(device)]!.accessToken);

        // The same request again: its stored outcome if the dead server had committed it, a
        // first commit if not; exactly once either way (APPEND-013).
        for (const appender of appenders) {
          const request = appender.unanswered;
          if (request === undefined) continue;
          const response = await clientOf(appender.device).appendDeltas(request);
          if (response.replayed) replays += 1;
          record(request, appender.device, response);
          appender.unanswered = undefined;
          appender.next = request.clientSequence + 1n;
        }
        if (!kill) return;

        const target = ACKS_BEFORE_KILL[0] + random(ACKS_BEFORE_KILL[1] - ACKS_BEFORE_KILL[0] + 1);
        const sizes = Array.from({ length: 4096 }, () => 1 + random(MAX_BATCH));
        let acknowledged = 0;
        let killed = false;
        await Promise.all(
          appenders.map(async (appender, a) => {
            const client = clientOf(appender.device);
            for (let n = 0; !killed; n++) {
              const sequence = appender.next;
              const size = sizes[(a * 131 + n) % sizes.length]!;
              const deltas = Array.from({ length: size }, (_, index) => {
                const payload = payloadOf(appender, sequence, index);
                sent.set(keyOf(appender.stream.id, appender.device, sequence, index), payload);
                return { payload };
              });
              const request = { stream: `${subject}/streams/${appender.stream.id}`, deltas, clientSequence: sequence };
              appender.unanswered = request;
              try {
                record(request, appender.device, await client.appendDeltas(request));
              } catch {
                return; // The server died under this call: its outcome is unknown.
              }
              appender.unanswered = undefined;
              appender.next = sequence + 1n;
              if (++acknowledged === target) {
                // A few milliseconds on, so that some batches are committed but not yet
                // answered when the process dies: their retries must replay, not re-append.
                setTimeout(() => {
                  killed = true;
                  server.child.kill("SIGKILL");
                }, random(4));
              }
            }
          }),
        );
        expect(await server.exited()).toBe("SIGKILL");
      } finally {
        channel.close();
        if (!kill) {
          server.child.kill("SIGTERM");
          expect(await server.exited()).toBe(0);
        }
      }
    };

    for (let cycle = 0; cycle < CYCLES; cycle++) await life(cycle, true);

    // A last life resends what the last kill left unanswered, then everything is read back.
    const server = spawnServer(["--log-level", "warn"], env);
    processes.push(server);
    const channel = createChannel(await server.ready());
    const session = await exchange(channel, platform, devices[0]!);
    const client = clientsAs(channel, session.accessToken);
    for (const appender of appenders) {
      const request = appender.unanswered;
      if (request === undefined) continue;
      const response = await clientsAs(channel, (await exchange(channel, platform, appender.device)).accessToken).appendDeltas(request);
      if (response.replayed) replays += 1;
      record(request, appender.device, response);
      appender.unanswered = undefined;
      appender.next = request.clientSequence + 1n;
    }

    const stored = new Map<string, continuity.v1.Delta>();
    for (const { id, encoding } of STREAMS) {
      const name = `${subject}/streams/${id}`;
      const stream = (await client.getStream({ name })).stream!;
      const deltas: continuity.v1.Delta[] = [];
      for (let pageToken = "", first = true; first || pageToken !== ""; first = false) {
        const page = await client.listDeltas({ stream: name, afterVersion: 0n, pageSize: 1000, pageToken });
        deltas.push(...page.deltas);
        pageToken = page.nextPageToken;
      }
      // The chain from genesis to head verifies, with no gap.
      expect(BigInt(deltas.length)).toBe(stream.headVersion);
      const verification = verifyChain({ start: { version: stream.horizonVersion, hash: stream.horizonHash }, encoding, deltas });
      expect(verification.ok, `${id}: the hash chain does not verify`).toBe(true);
      if (verification.ok) expect(toHex(verification.headHash)).toBe(toHex(stream.headHash));

      // No delta is stored twice, and each is what some attempt sent for its place.
      for (const delta of deltas) {
        const device = delta.device.split("/").pop()!;
        const key = keyOf(id, device, delta.clientSequence, Number(delta.version - delta.batchFirstVersion));
        expect(stored.has(key), `${key} is stored twice`).toBe(false);
        stored.set(key, delta);
        const payload = sent.get(key);
        expect(payload !== undefined && bytesEqual(delta.payload, payload), `${key} holds bytes no attempt sent`).toBe(true);
      }
      // Every batch is whole: batch_size deltas from batch_first_version on, all of one append.
      const batches = new Map<string, continuity.v1.Delta[]>();
      for (const delta of deltas) {
        const batch = `${delta.device}#${delta.clientSequence}`;
        batches.set(batch, [...(batches.get(batch) ?? []), delta]);
      }
      for (const [batch, members] of batches) {
        expect(members.map((d) => d.version), `${id} ${batch} is not whole`).toEqual(
          Array.from({ length: members[0]!.batchSize }, (_, i) => members[0]!.batchFirstVersion + BigInt(i)),
        );
      }
      // No appender has a hole in its client sequence.
      for (const device of devices) {
        const sequences = [...new Set(deltas.filter((d) => d.device.endsWith(`/devices/${device}`)).map((d) => d.clientSequence))].sort((a, b) => (a < b ? -1 : 1));
        expect(sequences, `${id} ${device}`).toEqual(sequences.map((_, i) => BigInt(i + 1)));
      }
    }
    channel.close();
    server.child.kill("SIGTERM");
    expect(await server.exited()).toBe(0);

    // Every acknowledged delta is stored exactly where and as it was acknowledged.
    expect(acks.size).toBeGreaterThanOrEqual(CYCLES * ACKS_BEFORE_KILL[0]);
    for (const appender of appenders) {
      for (let sequence = 1n; sequence < appender.next; sequence++) {
        for (let index = 0; ; index++) {
          const key = keyOf(appender.stream.id, appender.device, sequence, index);
          const ack = acks.get(key);
          if (ack === undefined) {
            expect(index, `${appender.stream.id} ${appender.device}#${sequence} was never acknowledged`).toBeGreaterThan(0);
            break;
          }
          const delta = stored.get(key);
          expect(delta, `acknowledged ${key} is missing`).toBeDefined();
          expect(delta!.version).toBe(ack.version);
          expect(bytesEqual(delta!.hash, ack.hash)).toBe(true);
        }
      }
    }
    // Every stored delta was acknowledged: after the retries nothing is left in doubt.
    expect(stored.size).toBe(acks.size);
    console.info(`crash test: ${CYCLES} kills, ${acks.size} deltas acknowledged, ${replays} retries answered from the stored outcome (CRASH_SEED=${SEED})`);
  }, 30_000 + CYCLES * 20_000);
});
