/**
 * LIMIT-020: a JSON stream's state is bounded by max_snapshot_bytes; LIMIT-021: what an
 * append's copies insert counts against max_delta_bytes. Issue 10 defect 1: a 1 KB JSON Patch
 * of self-doubling copies took 11.8 s and 2.7 GB (k = 24) or killed the process (k = 27), with
 * every other call waiting.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { snapshotHash, WIDE_OBJECT_MEMBERS } from "@continuity/sdk/protocol";
import type { PostgresStore } from "../../src/store/postgres/pg-store.js";
import type { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { collect, failure, jsonBytes, startTestServer, type TestServer } from "../../src/testing/harness.js";
import { appendAll, docStream, fillingPatches, whileOthersCall, widePatches } from "./large-state.js";
import { testStoreKind } from "../../src/testing/test-store.js";
import { compactForRetention } from "../../src/services/retention.js";

const v1 = continuity.v1;
const BLIND = v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND;

let server: TestServer | undefined;
afterEach(async () => {
  vi.restoreAllMocks();
  await server?.close();
  server = undefined;
});

/** `[add /a [0], copy /a → /a/- × copies]`: the state doubles at each copy. */
function doublingPatch(copies: number): unknown[] {
  return [{ op: "add", path: "/a", value: [0] }, ...Array.from({ length: copies }, () => ({ op: "copy", from: "/a", path: "/a/-" }))];
}

async function setUp(limits?: { maxSnapshotBytes: number }) {
  server = await startTestServer({ maintenanceIntervalMs: 0, ...(limits === undefined ? {} : { limits }) });
  return docStream(server);
}

describe("LIMIT-020, LIMIT-021: the state of a JSON stream and the work of an append are bounded", () => {
  it("refuses a 1 KB self-doubling patch quickly with DELTA_TOO_LARGE, with no effect, while other calls are answered", async () => {
    const { ana, stream, append } = await setUp();
    const hostile = append([doublingPatch(40)]);
    // GetServerInfo sent right behind the hostile append must not wait for it for long.
    const started = performance.now();
    const info = await server!.anonymous.serverInfo.getServerInfo({});
    const infoMs = performance.now() - started;
    const refused = await failure(hostile);
    expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "DELTA_TOO_LARGE", metadata: { index: "0" } });
    expect(refused.metadata["limit"]).toBe(String(info.limits!.maxDeltaBytes));
    // Before the bound it waited 11.8 s behind the patch; 2 s leaves room for a loaded CI machine.
    expect(infoMs).toBeLessThan(2000);
    const after = await ana.clients.stream.getStream({ name: stream.name });
    expect(after.stream!.headVersion).toBe(0n);
  });

  it("accepts a state exactly at the bound and refuses one byte more, across deltas of a batch", async () => {
    const limit = 65_536;
    const { ana, stream, append } = await setUp({ maxSnapshotBytes: limit });
    // {"s":"xxx…"} is 8 bytes plus the string.
    const exact = "x".repeat(limit - 8);
    await append([[{ op: "add", path: "/s", value: exact.slice(0, 100) }], [{ op: "replace", path: "/s", value: exact }]]);
    const parts = await collect(ana.clients.stream.getSnapshot({ stream: stream.name }));
    const header = parts[0]?.part?.$case === "header" ? parts[0].part.value : undefined;
    expect(header?.sizeBytes).toBe(BigInt(limit));
    const refused = await failure(append([[{ op: "add", path: "/t", value: 1 }]]));
    expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SNAPSHOT_TOO_LARGE", metadata: { limit: String(limit) } });
    // A small doubling patch against a small bound is refused before the state grows.
    const small = await failure(append([[{ op: "remove", path: "/s" }, ...doublingPatch(30)]]));
    expect(small).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SNAPSHOT_TOO_LARGE" });
    expect((await ana.clients.stream.getStream({ name: stream.name })).stream!.headVersion).toBe(2n);
  });

  it("counts the copies of all deltas of a batch against max_delta_bytes, and accepts copies up to it", async () => {
    const { ana, stream, append } = await setUp();
    const info = await server!.anonymous.serverInfo.getServerInfo({});
    const maxDelta = Number(info.limits!.maxDeltaBytes);
    // A string member whose copy inserts just under half the bound.
    const half = "y".repeat(Math.floor(maxDelta / 2) - 10);
    await append([[{ op: "add", path: "/s", value: half }]]);
    const copy = (to: string) => [{ op: "copy", from: "/s", path: to }];
    await append([copy("/c1")]);
    const refused = await failure(append([copy("/c2"), copy("/c3"), copy("/c4")]));
    expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "DELTA_TOO_LARGE", metadata: { index: "2", limit: String(maxDelta) } });
    expect((await ana.clients.stream.getStream({ name: stream.name })).stream!.headVersion).toBe(2n);
    await append([copy("/c2"), copy("/c3")]);
    expect((await ana.clients.stream.getStream({ name: stream.name })).stream!.headVersion).toBe(4n);
  });

  it("bounds a merge-patch stream's state too", async () => {
    const limit = 65_536;
    server = await startTestServer({ maintenanceIntervalMs: 0, limits: { maxSnapshotBytes: limit } });
    const ana = await server.signIn("course-a", "ana");
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: "merge",
      stream: { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: BLIND },
    });
    const big = (key: string) => ({ [key]: "z".repeat(40_000) });
    const send = (seq: number, patch: unknown) =>
      ana.clients.stream.appendDeltas({ stream: stream!.name, clientSequence: BigInt(seq), deltas: [{ payload: jsonBytes(patch) }] });
    await send(1, big("a"));
    const refused = await failure(send(2, big("b")));
    expect(refused).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SNAPSHOT_TOO_LARGE", metadata: { limit: String(limit) } });
    await send(2, { a: null, ...big("b") });
  });
});

describe("issue 10 defect 1, issue 13: appends to a large JSON state cost what they touch", () => {
  it("stores states by the declared rule: small deltas to a large state add little disk each, and every version still materializes", { timeout: 180_000 }, async () => {
    server = await startTestServer({ maintenanceIntervalMs: 0 });
    const ana = await server.signIn("course-a", "ana");
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: "large",
      stream: { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: BLIND },
    });
    const name = stream!.name;
    // A state of ~250 KB, then 4,200 small deltas (past one whole period of the rule's 4,096).
    let sequence = await appendAll(ana, name, fillingPatches(250_000, 250_000), 1, { maxBatchBytes: 4_194_304, maxBatchDeltas: 500 });
    await server.server.deps.jsonHeads.idle();
    const before = await storedBytes(server);
    const deltas = 4200;
    for (let start = 0; start < deltas; start += 100) {
      const batch = Array.from({ length: 100 }, (_, i) => ({ payload: jsonBytes({ position: start + i }) }));
      await ana.clients.stream.appendDeltas({ stream: name, clientSequence: BigInt(sequence++), deltas: batch });
    }
    await server.server.deps.jsonHeads.idle();
    const after = await storedBytes(server);
    // Before: a full copy every 64 versions, ~3.9 KB per delta here; the rule stores one state
    // per 4,096 deltas (~60 B per delta here) besides the deltas themselves.
    const statesPerDelta = (after.states - before.states) / deltas;
    expect(statesPerDelta).toBeLessThan(250);
    if (after.pages !== undefined && before.pages !== undefined) expect((after.pages - before.pages) / deltas).toBeLessThan(1500);
    // Versions on either side of the stored state materialize to what the history says.
    const { stream: head } = await ana.clients.stream.getStream({ name });
    const headVersion = Number(head!.headVersion);
    for (const version of [headVersion, headVersion - 150, headVersion - 4150, 3]) {
      const parts = await collect(ana.clients.stream.getSnapshot({ stream: name, version: BigInt(version) }));
      const header = parts[0]?.part?.$case === "header" ? parts[0].part.value : undefined;
      const data = Buffer.concat(parts.slice(1).map((p) => (p.part?.$case === "data" ? p.part.value : Buffer.alloc(0))));
      expect(header?.version).toBe(BigInt(version));
      expect(Buffer.from(header!.snapshotHash)).toEqual(Buffer.from(snapshotHash({ streamUid: head!.uid, version: BigInt(version), headHash: header!.headHash, encoding: header!.encoding, state: data })));
      const state = JSON.parse(data.toString("utf8")) as { position?: number; m000000?: string };
      expect(state.m000000?.length).toBe(1000);
      expect(state.position).toBe(version - (headVersion - deltas) - 1);
    }
  });

  it("answers other calls while small appends go to a ~60 MiB state, and while a cold server loads it", { timeout: 240_000 }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "continuity-large-state-"));
    try {
      server = await startTestServer({ maintenanceIntervalMs: 0, dataDir });
      const info = await server.anonymous.serverInfo.getServerInfo({});
      const limits = { maxBatchBytes: Number(info.limits!.maxBatchBytes), maxBatchDeltas: Number(info.limits!.maxBatchDeltas) };
      const bound = Number(info.limits!.maxSnapshotBytes);
      const ana = await server.signIn("course-a", "ana");
      const { stream } = await ana.clients.stream.createStream({
        parent: ana.subject,
        streamId: "big",
        stream: { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: BLIND },
      });
      const name = stream!.name;
      const fill = fillingPatches(bound - 4 * 1024 * 1024, Number(info.limits!.maxDeltaBytes) - 1024);
      const filled = fill.length;
      let sequence = await appendAll(ana, name, fill, 1, limits);
      await server.server.deps.jsonHeads.idle();

      // Before: every one of these parsed, patched, re-canonicalized and rewrote the whole
      // state (seconds each), and every other call waited behind it.
      const warm = await whileOthersCall(server, async () => {
        for (let i = 0; i < 20; i++) {
          await ana.clients.stream.appendDeltas({ stream: name, clientSequence: BigInt(sequence++), deltas: [{ payload: jsonBytes({ position: i }) }] });
        }
      });
      expect(warm.maxDelayMs).toBeLessThan(1000);
      expect(warm.slowestCallMs).toBeLessThan(1500);

      const { stream: head } = await ana.clients.stream.getStream({ name });
      expect(Number(head!.headVersion)).toBe(filled + 20);

      if (testStoreKind() !== "sqlite") return;
      // A restarted server holds nothing: its first append loads the state, in slices.
      await server.close();
      server = await startTestServer({ maintenanceIntervalMs: 0, dataDir });
      const again = await server.signIn("course-a", "ana");
      const cold = await whileOthersCall(server, async () => {
        await again.clients.stream.appendDeltas({ stream: name, clientSequence: BigInt(sequence++), deltas: [{ payload: jsonBytes({ position: "cold" }) }] });
      });
      expect(cold.maxDelayMs).toBeLessThan(1500);
      expect(cold.slowestCallMs).toBeLessThan(2000);
    } finally {
      await server?.close();
      server = undefined;
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe("issue 10 defect 1: no call's work on a whole ~60 MiB state stalls other calls (LIMIT-022)", () => {
  it("answers other calls within 2 s while RestoreCheckpoint, compaction and retention work on a ~60 MiB state (6-23 s before), and within 750 ms while GetSnapshot does", { timeout: 300_000 }, async () => {
    server = await startTestServer({ maintenanceIntervalMs: 0 });
    const info = await server.anonymous.serverInfo.getServerInfo({});
    const limits = { maxBatchBytes: Number(info.limits!.maxBatchBytes), maxBatchDeltas: Number(info.limits!.maxBatchDeltas) };
    const ana = await server.signIn("course-a", "ana");
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: "big",
      stream: { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: BLIND },
    });
    const name = stream!.name;
    const fill = fillingPatches(Number(info.limits!.maxSnapshotBytes) - 4 * 1024 * 1024, Number(info.limits!.maxDeltaBytes) - 1024);
    let sequence = await appendAll(ana, name, fill, 1, limits);
    await server.server.deps.jsonHeads.idle();
    const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "full", streams: [{ stream: name }] });
    const atCheckpoint = Number(checkpoint!.entries[0]!.version);
    // Small changes after the checkpoint: the restore's compensating delta is small, but
    // materializing the target and diffing it against the head touch the whole state.
    for (const patch of [{ position: 1 }, { m000001: null }, { extra: "x".repeat(100) }]) {
      await ana.clients.stream.appendDeltas({ stream: name, clientSequence: BigInt(sequence++), deltas: [{ payload: jsonBytes(patch) }] });
    }
    // The parts, not one buffer: copying 60 MiB in the test would stall the loop it measures.
    const snapshotAt = async (version?: bigint) => {
      const parts = await collect(ana.clients.stream.getSnapshot({ stream: name, ...(version === undefined ? {} : { version }) }));
      return parts.slice(1).map((p) => (p.part?.$case === "data" ? p.part.value : Buffer.alloc(0)));
    };
    let restoredVersion = 0n;
    const phases: [string, () => Promise<unknown>][] = [
      ["RestoreCheckpoint", async () => {
        const { streams } = await ana.clients.checkpoint.restoreCheckpoint({ name: checkpoint!.name });
        restoredVersion = streams[0]!.version;
      }],
      ["GetSnapshot at the head", () => snapshotAt()],
      // A horizon between stored states: the state there is materialized, then stored.
      ["CompactStream", () => ana.clients.stream.compactStream({ stream: name, horizonVersion: BigInt(atCheckpoint - 2) })],
      ["retention", () => compactForRetention(server!.server.deps, 1)],
      ["background state store", () => server!.server.deps.jsonHeads.idle()],
      ["GetSnapshot below the head", () => snapshotAt(BigInt(atCheckpoint + 3))],
    ];
    const stalls: { phase: string; maxDelayMs: number; slowestCallMs: number }[] = [];
    for (const [phase, work] of phases) {
      const measured = await whileOthersCall(server, async () => void (await work()));
      if (process.env["CONTINUITY_REPORT_STALLS"] !== undefined) console.log(phase, measured);
      // Before (loaded 2-vCPU VM): RestoreCheckpoint held the loop 22.6 s, CompactStream 6.2 s,
      // retention 10.4 s, GetSnapshot 0.9 s; after (SQLite / PostgreSQL): 94 / 281, 227 / 95,
      // 159 / 123 and 124 / 224 ms.
      // The bounds sit well below each "before" and well above what a loaded machine adds to
      // the "after": on a 2-vCPU VM shared with other jobs (load ~18) the peaks after were
      // 95–280 ms (garbage collection of the state's object graphs, and the machine's own
      // load), while fresh-clone CI runs (three vitest workers on 2 cores) saw 560 ms for
      // RestoreCheckpoint and 736 ms, with a call of 1,229 ms, for CompactStream. So 2 s (calls
      // 3 s) for the phases that held the loop 6-23 s, and 750 ms (calls 1.25 s) for GetSnapshot,
      // whose "before" was 900 ms.
      const bound = phase.startsWith("GetSnapshot") ? { delayMs: 750, callMs: 1250 } : { delayMs: 2000, callMs: 3000 };
      if (measured.maxDelayMs >= bound.delayMs || measured.slowestCallMs >= bound.callMs) stalls.push({ phase, ...measured });
    }
    expect(stalls).toEqual([]);
    expect(restoredVersion).toBe(BigInt(atCheckpoint + 4));
    const restored = JSON.parse(Buffer.concat(await snapshotAt()).toString("utf8")) as Record<string, unknown>;
    expect(restored["position"]).toBeUndefined();
    expect(restored["extra"]).toBeUndefined();
    expect(typeof restored["m000001"]).toBe("string");
    const { stream: head } = await ana.clients.stream.getStream({ name });
    expect(head!.horizonVersion).toBe(restoredVersion - 1n);
  });
});

describe("issue 10 defect 1: no call's work on one object of 1,000,000 members stalls other calls (LIMIT-022)", () => {
  it("lists no wide object's names in one step, and answers other calls, while GetSnapshot, RestoreCheckpoint and CompactStream work on a state of one object of 1,000,000 members", { timeout: 300_000 }, async () => {
    server = await startTestServer({ maintenanceIntervalMs: 0 });
    const info = await server.anonymous.serverInfo.getServerInfo({});
    const limits = { maxBatchBytes: Number(info.limits!.maxBatchBytes), maxBatchDeltas: Number(info.limits!.maxBatchDeltas) };
    const ana = await server.signIn("course-a", "ana");
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: "wide",
      stream: { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: BLIND },
    });
    const name = stream!.name;
    const members = 1_000_000;
    let sequence = await appendAll(ana, name, widePatches(members, Number(info.limits!.maxDeltaBytes) - 1024), 1, limits);
    // The whole object stored at the head, so that what is measured below is the work on it, not
    // replaying the deltas that built it: each of those widens the parsed object, and V8 grows an
    // object's member table by copying it whole (one step of up to ~0.4 s near a million members).
    const { stream: filled } = await ana.clients.stream.getStream({ name });
    await ana.clients.stream.compactStream({ stream: name, horizonVersion: filled!.headVersion });
    await server.server.deps.jsonHeads.idle();
    const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "wide", streams: [{ stream: name }] });
    const atCheckpoint = Number(checkpoint!.entries[0]!.version);
    // A member removed and one added after the checkpoint: the restore's diff puts both back,
    // and every state below materializes from a stored state by replaying edits of the object.
    for (const patch of [{ w0000001: null }, { extra: true }]) {
      await ana.clients.stream.appendDeltas({ stream: name, clientSequence: BigInt(sequence++), deltas: [{ payload: jsonBytes(patch) }] });
    }
    const snapshotAt = async (version?: bigint) => {
      const parts = await collect(ana.clients.stream.getSnapshot({ stream: name, ...(version === undefined ? {} : { version }) }));
      const header = parts[0]?.part?.$case === "header" ? parts[0].part.value : undefined;
      return { header, data: parts.slice(1).map((p) => (p.part?.$case === "data" ? p.part.value : Buffer.alloc(0))) };
    };
    const snapshots = new Map<string, Awaited<ReturnType<typeof snapshotAt>>>();
    const phases: [string, () => Promise<unknown>][] = [
      ["GetSnapshot at the head", async () => snapshots.set("head", await snapshotAt())],
      ["GetSnapshot below the head", async () => snapshots.set("below", await snapshotAt(BigInt(atCheckpoint + 1)))],
      ["RestoreCheckpoint", () => ana.clients.checkpoint.restoreCheckpoint({ name: checkpoint!.name })],
      ["CompactStream", () => ana.clients.stream.compactStream({ stream: name, horizonVersion: BigInt(atCheckpoint + 1) })],
      ["background state store", () => server!.server.deps.jsonHeads.idle()],
      ["GetSnapshot after the restore", async () => snapshots.set("restored", await snapshotAt())],
    ];
    // The step itself, whatever the machine's load: no Object.keys of the wide object (this
    // process runs the server), whose names come from the index kept beside it instead.
    const listKeys = Object.keys;
    let widestListed = 0;
    const spy = vi.spyOn(Object, "keys").mockImplementation((object: object) => {
      const keys = listKeys(object);
      widestListed = Math.max(widestListed, keys.length);
      return keys;
    });
    const stalls: { phase: string; maxDelayMs: number; slowestCallMs: number }[] = [];
    const listed: { phase: string; widest: number }[] = [];
    for (const [phase, work] of phases) {
      widestListed = 0;
      const measured = await whileOthersCall(server, async () => void (await work()));
      if (widestListed > WIDE_OBJECT_MEMBERS) listed.push({ phase, widest: widestListed });
      if (process.env["CONTINUITY_REPORT_STALLS"] !== undefined) console.log(phase, measured, { widestListed });
      // Before the member names were kept beside the object, each of these listed them with
      // Object.keys, one step of 0.5-0.9 s, several times in some: longest delays 1.2-6.4 s per
      // phase (2-vCPU VM at a load of ~11, SQLite and PostgreSQL runs side by side). After:
      // 0.1-0.64 s with one run alone, 0.15-2.0 s side by side as other sessions' load varied;
      // what is left is V8 growing the object's member table while the parser defines its
      // members (a copy of the table, up to ~0.35 s at 700,000 members on that VM), garbage
      // collection of a million-member object graph, and the machine's own load. So the bound
      // here is loose (2.5 s, most phases took longer before); `listed` above is the check that
      // does not depend on the load.
      if (measured.maxDelayMs >= 2500 || measured.slowestCallMs >= 4000) stalls.push({ phase, ...measured });
    }
    spy.mockRestore();
    expect(listed).toEqual([]);
    expect(stalls).toEqual([]);

    // Byte for byte, and under the hash the header states: a member name missing, extra or out
    // of order would be a wrong state under a valid hash.
    const expected = (skip: (i: number) => boolean, extra: string) => {
      const parts: string[] = [];
      for (let i = 0; i < members; i++) if (!skip(i)) parts.push(`"w${String(i).padStart(7, "0")}":${i % 10}`);
      return Buffer.from(`{${extra}${parts.join(",")}}`, "utf8");
    };
    const { stream: head } = await ana.clients.stream.getStream({ name });
    for (const [key, want] of [
      ["head", expected((i) => i === 1, '"extra":true,')],
      ["below", expected((i) => i === 1, "")],
      ["restored", expected(() => false, "")],
    ] as const) {
      const { header, data } = snapshots.get(key)!;
      const bytes = Buffer.concat(data);
      expect({ key, equal: bytes.equals(want), length: bytes.length }).toEqual({ key, equal: true, length: want.length });
      expect(Buffer.from(header!.snapshotHash)).toEqual(Buffer.from(snapshotHash({ streamUid: head!.uid, version: header!.version, headHash: header!.headHash, encoding: header!.encoding, state: bytes })));
    }
    expect(snapshots.get("restored")!.header!.version).toBe(BigInt(atCheckpoint + 3));
  });
});

describe("issue 10 defect 1: a restore whose compensating delta is a whole ~60 MiB state does not stall other calls (LIMIT-022)", () => {
  it("answers other calls within half a second while RestoreCheckpoint puts a ~60 MiB state back over an emptied head", { timeout: 300_000 }, async () => {
    server = await startTestServer({ maintenanceIntervalMs: 0 });
    const info = await server.anonymous.serverInfo.getServerInfo({});
    const limits = { maxBatchBytes: Number(info.limits!.maxBatchBytes), maxBatchDeltas: Number(info.limits!.maxBatchDeltas) };
    const ana = await server.signIn("course-a", "ana");
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: "big",
      stream: { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: BLIND },
    });
    const name = stream!.name;
    const fill = fillingPatches(Number(info.limits!.maxSnapshotBytes) - 4 * 1024 * 1024, Number(info.limits!.maxDeltaBytes) - 1024);
    let sequence = await appendAll(ana, name, fill, 1, limits);
    await server.server.deps.jsonHeads.idle();
    const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "full", streams: [{ stream: name }] });
    // A merge patch that is no object replaces the whole state: the head is emptied.
    await ana.clients.stream.appendDeltas({ stream: name, clientSequence: BigInt(sequence++), deltas: [{ payload: jsonBytes([]) }] });

    const measured = await whileOthersCall(server, async () => {
      await ana.clients.checkpoint.restoreCheckpoint({ name: checkpoint!.name });
      // The state the restore made due is stored in the background: part of its cost.
      await server!.server.deps.jsonHeads.idle();
    });
    if (process.env["CONTINUITY_REPORT_STALLS"] !== undefined) console.log("RestoreCheckpoint over an emptied head", measured);
    // Loaded 2-vCPU VM: 2.6-4.2 s on SQLite, the delta applied to the held head in one step,
    // then materialized again in one step to store the state; then 0.51-0.56 s on SQLite and
    // 0.75-1.35 s on PostgreSQL, the store writing the delta's ~60 MiB payload as one row
    // (SQLite's insert and commit, pg's hex encoding of the parameter: 0.60 s and 1.0 s against
    // this bound); now 0.21-0.26 s and 0.11-0.39 s, the payload written ahead in chunks.
    const bound = testStoreKind() === "sqlite" ? 400 : 500;
    expect(measured.maxDelayMs).toBeLessThan(bound);
    expect(measured.slowestCallMs).toBeLessThan(bound + 500);

    const parts = await collect(ana.clients.stream.getSnapshot({ stream: name }));
    const restored = JSON.parse(Buffer.concat(parts.slice(1).map((p) => (p.part?.$case === "data" ? p.part.value : Buffer.alloc(0)))).toString("utf8")) as Record<string, unknown>;
    expect(Object.keys(restored).length).toBe(fill.reduce((n, patch) => n + Object.keys(JSON.parse(patch.toString("utf8")) as object).length, 0));
    expect(typeof restored["m000001"]).toBe("string");
  });
});

describe("issue 10 defect 1: erasing a subject that holds a ~60 MiB state does not stall other calls (LIMIT-022, ERASE-004)", () => {
  it("answers other calls within half a second while DeleteSubject erases it, and leaves nothing of it", { timeout: 300_000 }, async () => {
    server = await startTestServer({ maintenanceIntervalMs: 0 });
    const info = await server.anonymous.serverInfo.getServerInfo({});
    const limits = { maxBatchBytes: Number(info.limits!.maxBatchBytes), maxBatchDeltas: Number(info.limits!.maxBatchDeltas) };
    const ana = await server.signIn("course-a", "ana");
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: "big",
      stream: { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: BLIND },
    });
    const fill = fillingPatches(Number(info.limits!.maxSnapshotBytes) - 4 * 1024 * 1024, Number(info.limits!.maxDeltaBytes) - 1024);
    await appendAll(ana, stream!.name, fill, 1, limits);
    // A compaction stores the whole state in chunks too: the erasure has deltas and chunks to remove.
    await ana.clients.stream.compactStream({ stream: stream!.name, horizonVersion: BigInt(fill.length - 1) });
    await server.server.deps.jsonHeads.idle();
    const ben = await server.signIn("course-a", "ben");
    const { stream: kept } = await ben.clients.stream.createStream({
      parent: ben.subject,
      streamId: "kept",
      stream: { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: BLIND },
    });
    await ben.clients.stream.appendDeltas({ stream: kept!.name, clientSequence: 1n, deltas: [{ payload: jsonBytes({ ben: true }) }] });

    const measured = await whileOthersCall(server, async () => void (await ana.clients.subject.deleteSubject({ name: ana.subject })));
    if (process.env["CONTINUITY_REPORT_STALLS"] !== undefined) console.log("DeleteSubject", measured);
    expect(measured.maxDelayMs).toBeLessThan(500);
    expect(measured.slowestCallMs).toBeLessThan(1000);

    expect(await failure(ana.clients.stream.getStream({ name: stream!.name }))).toMatchObject({ code: "UNAUTHENTICATED", reason: "TOKEN_REVOKED" });
    if (testStoreKind() === "sqlite") {
      const db = (server.store as SqliteStore).db;
      for (const table of ["deltas", "stream_keys", "json_state_chunks", "json_states", "streams", "subjects"]) {
        // Deltas are keyed by stream_keys (migration 10): every delta not of another subject's stream.
        const where = table === "deltas" ? "stream_key NOT IN (SELECT stream_key FROM stream_keys WHERE subject_id <> ?)" : "subject_id = ?";
        const row = db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`).get(ana.subject.slice("subjects/".length)) as { n: number };
        expect({ table, rows: row.n }).toEqual({ table, rows: 0 });
      }
    }
    const parts = await collect(ben.clients.stream.getSnapshot({ stream: kept!.name }));
    expect(parts[1]?.part?.$case === "data" ? Buffer.from(parts[1].part.value).toString("utf8") : "").toBe('{"ben":true}');
  });
});

describe("issue 10 defect 1: deleting a stream that holds a ~60 MiB state does not stall other calls (LIMIT-022)", () => {
  it("answers other calls within half a second while DeleteStream deletes it, leaves nothing of it, and a stream of the same id created meanwhile starts empty", { timeout: 300_000 }, async () => {
    // PostgreSQL deletes the rows in its own process, off the event loop.
    if (testStoreKind() !== "sqlite") return;
    server = await startTestServer({ maintenanceIntervalMs: 0 });
    const info = await server.anonymous.serverInfo.getServerInfo({});
    const limits = { maxBatchBytes: Number(info.limits!.maxBatchBytes), maxBatchDeltas: Number(info.limits!.maxBatchDeltas) };
    const ana = await server.signIn("course-a", "ana");
    const spec = { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: BLIND };
    const { stream } = await ana.clients.stream.createStream({ parent: ana.subject, streamId: "big", stream: spec });
    const name = stream!.name;
    const fill = fillingPatches(Number(info.limits!.maxSnapshotBytes) - 4 * 1024 * 1024, Number(info.limits!.maxDeltaBytes) - 1024);
    await appendAll(ana, name, fill, 1, limits);
    // A compaction stores the whole state in chunks too: the deletion has deltas and chunks to remove.
    await ana.clients.stream.compactStream({ stream: name, horizonVersion: BigInt(fill.length - 1) });
    await server.server.deps.jsonHeads.idle();
    const db = (server.store as SqliteStore).db;
    const subjectId = ana.subject.slice("subjects/".length);
    const bytesOf = (): number =>
      (db.prepare("SELECT (SELECT COALESCE(SUM(length(payload)), 0) FROM deltas WHERE stream_key = (SELECT stream_key FROM stream_keys WHERE subject_id = ? AND stream_id = 'big')) + (SELECT COALESCE(SUM(length(data)), 0) FROM json_state_chunks WHERE subject_id = ? AND stream_id = 'big') AS n").get(subjectId, subjectId) as { n: number }).n;
    expect(bytesOf()).toBeGreaterThan(100 * 1024 * 1024);

    let recreated: Awaited<ReturnType<typeof ana.clients.stream.createStream>> | undefined;
    const measured = await whileOthersCall(server, async () => {
      const deleting = ana.clients.stream.deleteStream({ name });
      // The same id again as soon as the old stream answers as deleted, while its rows may still be there.
      for (let found = true; found; ) found = await ana.clients.stream.getStream({ name }).then(() => true, () => false);
      expect(await failure(ana.clients.stream.getStream({ name }))).toMatchObject({ code: "NOT_FOUND", reason: "STREAM_NOT_FOUND" });
      expect((await ana.clients.stream.listStreams({ parent: ana.subject })).streams.map((s) => s.name)).not.toContain(name);
      recreated = await ana.clients.stream.createStream({ parent: ana.subject, streamId: "big", stream: spec });
      await deleting;
    });
    if (process.env["CONTINUITY_REPORT_STALLS"] !== undefined) console.log("DeleteStream", measured);
    // Loaded 2-vCPU VM: 0.75-1.01 s on SQLite, one cascading DELETE overwriting every freed
    // page (secure_delete); now 37-188 ms, the rows deleted a few per statement.
    expect(measured.maxDelayMs).toBeLessThan(500);
    expect(measured.slowestCallMs).toBeLessThan(1000);

    // The new stream is a new stream: empty at version 0, and nothing of the old one is left.
    expect(recreated!.stream).toMatchObject({ name, headVersion: 0n });
    expect(recreated!.stream!.uid).not.toBe(stream!.uid);
    // Its only rows: the initial state `{}` in one chunk.
    expect(bytesOf()).toBe(2);
    for (const [table, rows] of [["deltas", 0], ["json_state_chunks", 1], ["json_states", 1], ["snapshots", 0], ["client_outcomes", 0]] as const) {
      // Deltas are keyed by stream_keys (migration 10): every delta not of another stream.
      const where =
        table === "deltas" ? "stream_key NOT IN (SELECT stream_key FROM stream_keys WHERE NOT (subject_id = ? AND stream_id = 'big'))" : "subject_id = ? AND stream_id = 'big'";
      const row = db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`).get(subjectId) as { n: number };
      expect({ table, rows: row.n }).toEqual({ table, rows });
    }
    const appended = await ana.clients.stream.appendDeltas({ stream: name, clientSequence: 1n, deltas: [{ payload: jsonBytes({ fresh: true }) }] });
    expect(appended.headVersion).toBe(1n);
    const parts = await collect(ana.clients.stream.getSnapshot({ stream: name }));
    expect(parts[1]?.part?.$case === "data" ? Buffer.from(parts[1].part.value).toString("utf8") : "").toBe('{"fresh":true}');
  });
});

/** Bytes of stored JSON states (both backends), and of SQLite pages in use. */
async function storedBytes(test: TestServer): Promise<{ states: number; pages: number | undefined }> {
  if (testStoreKind() === "sqlite") {
    const db = (test.store as SqliteStore).db;
    const states = (
      db.prepare("SELECT COALESCE(SUM(length(data)), 0) + (SELECT COALESCE(SUM(length(head_state)), 0) FROM streams) AS n FROM json_state_chunks").get() as { n: number }
    ).n;
    const pageSize = db.pragma("page_size", { simple: true }) as number;
    const pages = (db.pragma("page_count", { simple: true }) as number) - (db.pragma("freelist_count", { simple: true }) as number);
    return { states, pages: pages * pageSize };
  }
  const { pool, schema } = test.store as PostgresStore;
  const { rows } = await pool.query<{ n: string }>(
    `SELECT (SELECT COALESCE(SUM(octet_length(data)), 0) FROM ${schema}.json_state_chunks) + (SELECT COALESCE(SUM(octet_length(head_state)), 0) FROM ${schema}.streams) AS n`,
  );
  return { states: Number(rows[0]!.n), pages: undefined };
}
