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
const WRITERS = 4;
/** Acknowledged appends to wait for before pulling the plug. */
const ACKS_BEFORE_KILL = 150;

interface Ack {
  readonly device: string;
  readonly sequence: bigint;
  readonly version: bigint;
  readonly hash: Uint8Array;
}

function clientsAs(channel: Channel, token: string) {
  const factory = createClientFactory().use(async function* (call, options) {
    return yield* call.next(call.request, { ...options, metadata: Metadata(options.metadata).set("authorization", `Bearer ${token}`) });
  });
  return { stream: factory.create(v1.StreamServiceDefinition, channel) };
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

function payloadOf(device: string, sequence: bigint): Buffer {
  return Buffer.from(JSON.stringify({ [device]: Number(sequence) }));
}

describe("crash safety", () => {
  const processes: ServerProcess[] = [];
  const dataDirs: string[] = [];
  afterAll(async () => {
    processes.forEach((p) => p.kill());
    await Promise.all(processes.map((p) => p.exited()));
    await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it("keeps every acknowledged append exactly once across kill -9, and the chain verifies", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "continuity-crash-"));
    dataDirs.push(dataDir);
    const platform = await createTestPlatform("crash-platform");
    const platformsFile = join(dataDir, "platforms.json");
    await writeFile(platformsFile, JSON.stringify({ platforms: [{ id: platform.id, jwks: platform.config.jwks }] }));
    const env = { CONTINUITY_LISTEN: "127.0.0.1:0", CONTINUITY_DATA_DIR: dataDir, CONTINUITY_PLATFORMS: platformsFile };

    // --- first life: concurrent writers, then SIGKILL mid-flight -------------------------
    const first = spawnServer(["--log-level", "warn"], env);
    processes.push(first);
    const channel1 = createChannel(await first.ready());
    const devices = Array.from({ length: WRITERS }, (_, i) => `writer-${i}`);
    const sessions = await Promise.all(devices.map((d) => exchange(channel1, platform, d)));
    const subject = sessions[0]!.subject;
    const streamName = `${subject}/streams/journal`;
    await clientsAs(channel1, sessions[0]!.accessToken).stream.createStream({
      parent: subject,
      streamId: "journal",
      stream: {
        type: "org.example.journal",
        encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH,
        conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND,
      },
    });

    const acks: Ack[] = [];
    const inFlight = new Map<string, bigint>();
    let killed = false;
    const writers = devices.map(async (device, i) => {
      const client = clientsAs(channel1, sessions[i]!.accessToken).stream;
      for (let sequence = 1n; !killed; sequence++) {
        inFlight.set(device, sequence);
        try {
          const response = await client.appendDeltas({
            stream: streamName,
            deltas: [{ payload: payloadOf(device, sequence) }],
            clientSequence: sequence,
          });
          acks.push({ device, sequence, version: response.receipts[0]!.version, hash: response.receipts[0]!.hash });
          inFlight.delete(device);
        } catch {
          return; // The server died under this call: its outcome is unknown.
        }
        if (acks.length >= ACKS_BEFORE_KILL && !killed) {
          killed = true;
          first.child.kill("SIGKILL");
        }
      }
    });
    await Promise.all(writers);
    expect(await first.exited()).toBe("SIGKILL");
    channel1.close();
    expect(acks.length).toBeGreaterThanOrEqual(ACKS_BEFORE_KILL);

    // --- second life: same data dir ---------------------------------------------------------
    const second = spawnServer(["--log-level", "warn"], env);
    processes.push(second);
    const channel2 = createChannel(await second.ready());
    const resumed = await Promise.all(devices.map((d) => exchange(channel2, platform, d)));
    expect(resumed.map((s) => s.subject)).toEqual(devices.map(() => subject));

    // Each writer retries the append whose answer it never got: exactly once either way.
    for (const [i, device] of devices.entries()) {
      const sequence = inFlight.get(device);
      if (sequence === undefined) continue;
      const response = await clientsAs(channel2, resumed[i]!.accessToken).stream.appendDeltas({
        stream: streamName,
        deltas: [{ payload: payloadOf(device, sequence) }],
        clientSequence: sequence,
      });
      acks.push({ device, sequence, version: response.receipts[0]!.version, hash: response.receipts[0]!.hash });
    }

    const client = clientsAs(channel2, resumed[0]!.accessToken).stream;
    const stream = (await client.getStream({ name: streamName })).stream!;
    const deltas: continuity.v1.Delta[] = [];
    for (let pageToken = "", first = true; first || pageToken !== ""; first = false) {
      const page = await client.listDeltas({ stream: streamName, afterVersion: 0n, pageSize: 1000, pageToken });
      deltas.push(...page.deltas);
      pageToken = page.nextPageToken;
    }
    channel2.close();
    second.child.kill("SIGTERM");
    expect(await second.exited()).toBe(0);

    // The chain from genesis to head verifies, with no gap.
    expect(BigInt(deltas.length)).toBe(stream.headVersion);
    const verification = verifyChain({
      start: { version: stream.horizonVersion, hash: stream.horizonHash },
      encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH,
      deltas,
    });
    expect(verification.ok).toBe(true);
    if (verification.ok) expect(toHex(verification.headHash)).toBe(toHex(stream.headHash));

    // Every (device, sequence) is stored at most once, and every acknowledged one exactly
    // where and as it was acknowledged.
    const byKey = new Map<string, continuity.v1.Delta>();
    for (const delta of deltas) {
      const key = `${delta.device.split("/").pop()}#${delta.clientSequence}`;
      expect(byKey.has(key), `duplicate ${key}`).toBe(false);
      byKey.set(key, delta);
    }
    for (const ack of acks) {
      const stored = byKey.get(`${ack.device}#${ack.sequence}`);
      expect(stored, `acknowledged ${ack.device}#${ack.sequence} is missing`).toBeDefined();
      expect(stored!.version).toBe(ack.version);
      expect(bytesEqual(stored!.hash, ack.hash)).toBe(true);
    }
    // No writer has a hole in its sequence numbers.
    for (const device of devices) {
      const sequences = deltas
        .filter((d) => d.device.endsWith(`/devices/${device}`))
        .map((d) => d.clientSequence)
        .sort((a, b) => (a < b ? -1 : 1));
      expect(sequences).toEqual(sequences.map((_, i) => BigInt(i + 1)));
    }
  }, 60_000);
});
