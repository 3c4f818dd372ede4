/**
 * LIMIT-020 and RESTORE-004 for RestoreCheckpoint: its compensating delta is an append that
 * makes the captured state the stream's state again, so a state larger than the server's
 * max_snapshot_bytes now (an operator lowered it since the checkpoint) is refused before
 * anything is appended to any stream of the checkpoint. Before, both tests below failed: the
 * restore succeeded and put a state over the bound in place, whether its compensating delta
 * was small (applied by the head's editor, which restore gave no bound) or over 1 MiB (the
 * whole target state put in place as it is).
 *
 * SQLite only: lowering the bound means restarting a server on the same store, and the check
 * is in the service, the same for every store.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { failure, jsonBytes, startTestServer, type TestServer } from "../../src/testing/harness.js";
import { appendAll, fillingPatches } from "./large-state.js";

const v1 = continuity.v1;
const BLIND = v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND;

let server: TestServer | undefined;
let dataDir: string | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  dataDir = undefined;
});

/**
 * A checkpoint of two streams, `first` (small, changed since) and `big` (about `bigBytes`,
 * emptied since), then a restart with `max_snapshot_bytes` = `lowered`; returns the refusal of
 * restoring it and the heads before and after.
 */
async function restoreUnderLoweredBound(bigBytes: number, lowered: number) {
  dataDir = await mkdtemp(join(tmpdir(), "continuity-restore-limit-"));
  server = await startTestServer({ maintenanceIntervalMs: 0, dataDir });
  const info = await server.anonymous.serverInfo.getServerInfo({});
  const limits = { maxBatchBytes: Number(info.limits!.maxBatchBytes), maxBatchDeltas: Number(info.limits!.maxBatchDeltas) };
  const ana = await server.signIn("course-a", "ana");
  const names: string[] = [];
  for (const streamId of ["first", "big"]) {
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId,
      stream: { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: BLIND },
    });
    names.push(stream!.name);
  }
  const [first, big] = names as [string, string];
  await ana.clients.stream.appendDeltas({ stream: first, clientSequence: 1n, deltas: [{ payload: jsonBytes({ step: "captured" }) }] });
  let sequence = await appendAll(ana, big, fillingPatches(bigBytes, Number(info.limits!.maxDeltaBytes) - 1024), 1, limits);
  const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "before", streams: [{ stream: first }, { stream: big }] });
  await ana.clients.stream.appendDeltas({ stream: first, clientSequence: 2n, deltas: [{ payload: jsonBytes({ step: "later" }) }] });
  // Every member of `big` removed: restoring it needs one delta that adds them all back.
  const snapshot = JSON.parse(Buffer.concat((await collectData(ana, big)).map((p) => Buffer.from(p))).toString("utf8")) as Record<string, unknown>;
  await ana.clients.stream.appendDeltas({ stream: big, clientSequence: BigInt(sequence++), deltas: [{ payload: jsonBytes(Object.fromEntries(Object.keys(snapshot).map((k) => [k, null]))) }] });
  const heads = async (session: typeof ana) => Promise.all(names.map(async (name) => (await session.clients.stream.getStream({ name })).stream!.headVersion));
  const before = await heads(ana);

  await server.close();
  server = await startTestServer({ maintenanceIntervalMs: 0, dataDir, limits: { maxSnapshotBytes: lowered } });
  const again = await server.signIn("course-a", "ana");
  const refused = await failure(again.clients.checkpoint.restoreCheckpoint({ name: checkpoint!.name }));
  return { refused, before, after: await heads(again) };
}

async function collectData(session: Awaited<ReturnType<TestServer["signIn"]>>, stream: string): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for await (const part of session.clients.stream.getSnapshot({ stream })) if (part.part?.$case === "data") parts.push(part.part.value);
  return parts;
}

describe("RestoreCheckpoint of a state over a lowered max_snapshot_bytes (LIMIT-020, RESTORE-004)", () => {
  it("refuses a small compensating delta with SNAPSHOT_TOO_LARGE and appends nothing to any stream", async () => {
    const { refused, before, after } = await restoreUnderLoweredBound(8 * 1024, 4 * 1024);
    expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SNAPSHOT_TOO_LARGE", metadata: { limit: String(4 * 1024), index: "0" } });
    expect(after).toEqual(before);
  });

  it("refuses a compensating delta over 1 MiB (applied as the whole state) the same way", async () => {
    const { refused, before, after } = await restoreUnderLoweredBound(1536 * 1024, 1280 * 1024);
    expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SNAPSHOT_TOO_LARGE", metadata: { limit: String(1280 * 1024), index: "0" } });
    expect(after).toEqual(before);
  });
});
