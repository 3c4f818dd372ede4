import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { canonicalJson, snapshotHash, toHex } from "@continuity/sdk/protocol";
import { collect, failure, jsonBytes, startTestServer, type Session, type TestServer } from "../../src/testing/harness.js";

const v1 = continuity.v1;
const MERGE = v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;
const OPAQUE = v1.DeltaEncoding.DELTA_ENCODING_OPAQUE;

let server: TestServer;
let ana: Session;
let chunkLimit = 8;

beforeEach(async () => {
  chunkLimit = 8;
  server = await startTestServer({ maintenanceIntervalMs: 0, limits: { maxChunkBytes: 8, maxSnapshotBytes: 64 } });
  ana = await server.signIn("course-a", "ana");
});
afterEach(async () => {
  await server.close();
});

async function createStream(id: string, encoding: continuity.v1.DeltaEncoding) {
  const { stream } = await ana.clients.stream.createStream({
    parent: ana.subject,
    streamId: id,
    stream: { type: "org.example.doc", encoding, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  return stream!;
}

let seq = 0;
beforeEach(() => {
  seq = 0;
});
function append(stream: string, ...payloads: Uint8Array[]) {
  seq += 1;
  return ana.clients.stream.appendDeltas({ stream, clientSequence: BigInt(seq), deltas: payloads.map((payload) => ({ payload: Buffer.from(payload) })) });
}

/** Reads a snapshot transfer: header, then the concatenated data. */
async function snapshot(stream: string, version?: bigint) {
  const parts = await collect(ana.clients.stream.getSnapshot({ stream, ...(version === undefined ? {} : { version }) }));
  const [first, ...rest] = parts;
  if (first?.part?.$case !== "header") throw new Error("first message is not a header");
  for (const p of rest) {
    if (p.part?.$case !== "data") throw new Error("a later message is not data");
    expect(p.part.value.length).toBeLessThanOrEqual(chunkLimit);
  }
  const data = Buffer.concat(rest.map((p) => (p.part?.$case === "data" ? p.part.value : Buffer.alloc(0))));
  return { header: first.part.value, data };
}

async function* upload(header: Partial<continuity.v1.SnapshotHeader>, chunks: Uint8Array[]) {
  yield { part: { $case: "header" as const, value: v1.SnapshotHeader.fromPartial(header) } };
  for (const chunk of chunks) yield { part: { $case: "data" as const, value: Buffer.from(chunk) } };
}

describe("GetSnapshot (JSON)", () => {
  it("materializes any retained version in chunks, with a verifiable hash", async () => {
    const stream = await createStream("doc", MERGE);
    const receipts = [];
    for (let i = 1; i <= 4; i++) receipts.push(await append(stream.name, jsonBytes({ [`k${i}`]: i })));
    const at2 = await snapshot(stream.name, 2n);
    expect(JSON.parse(at2.data.toString())).toEqual({ k1: 1, k2: 2 });
    expect(at2.header.version).toBe(2n);
    expect(toHex(at2.header.headHash)).toBe(toHex(receipts[1]!.headHash));
    expect(toHex(at2.header.snapshotHash)).toBe(
      toHex(snapshotHash({ streamUid: stream.uid, version: 2, headHash: receipts[1]!.headHash, encoding: MERGE, state: at2.data })),
    );
    const head = await snapshot(stream.name);
    expect(head.header.version).toBe(4n);
    expect(Buffer.from(head.data)).toEqual(Buffer.from(canonicalJson({ k1: 1, k2: 2, k3: 3, k4: 4 })));
    expect(head.header.sizeBytes).toBe(BigInt(head.data.length));
    const empty = await snapshot(stream.name, 0n);
    expect(empty.data.toString()).toBe("{}");
    expect(empty.header.headHash).toEqual(stream.headHash);
  });

  it("serves versions at and above the horizon after compaction, refuses below", async () => {
    const stream = await createStream("doc", MERGE);
    for (let i = 1; i <= 4; i++) await append(stream.name, jsonBytes({ [`k${i}`]: i }));
    await ana.clients.stream.compactStream({ stream: stream.name, horizonVersion: 3n });
    expect(JSON.parse((await snapshot(stream.name, 3n)).data.toString())).toEqual({ k1: 1, k2: 2, k3: 3 });
    expect(JSON.parse((await snapshot(stream.name, 4n)).data.toString())).toEqual({ k1: 1, k2: 2, k3: 3, k4: 4 });
    expect(await failure(snapshot(stream.name, 2n))).toMatchObject({ code: "FAILED_PRECONDITION", reason: "HISTORY_COMPACTED" });
    expect(await failure(snapshot(stream.name, 5n))).toMatchObject({ code: "OUT_OF_RANGE", reason: "VERSION_AHEAD_OF_HEAD" });
    // Appends continue on top of the compacted history.
    await append(stream.name, jsonBytes({ k5: 5 }));
    expect(JSON.parse((await snapshot(stream.name)).data.toString())).toMatchObject({ k5: 5, k1: 1 });
  });

  it("materializes across stored state intervals", async () => {
    await server.close();
    server = await startTestServer({ maintenanceIntervalMs: 0 });
    chunkLimit = 65_536;
    ana = await server.signIn("course-a", "ana");
    const stream = await createStream("long", MERGE);
    for (let i = 1; i <= 150; i++) await append(stream.name, jsonBytes({ n: i }));
    for (const v of [1n, 63n, 64n, 65n, 130n, 150n]) {
      expect(JSON.parse((await snapshot(stream.name, v)).data.toString())).toEqual({ n: Number(v) });
    }
  });
});

describe("UploadSnapshot / GetSnapshot (opaque)", () => {
  it("returns the empty state at version 0 before any upload", async () => {
    const stream = await createStream("crdt", OPAQUE);
    const empty = await snapshot(stream.name);
    expect(empty.header.version).toBe(0n);
    expect(empty.data.length).toBe(0);
  });

  it("stores a verified upload and serves the newest at or below a version", async () => {
    const stream = await createStream("crdt", OPAQUE);
    await append(stream.name, new Uint8Array([1]));
    const second = await append(stream.name, new Uint8Array([2]));
    await append(stream.name, new Uint8Array([3]));
    const state = new Uint8Array(Array.from({ length: 20 }, (_, i) => i));
    const hash = snapshotHash({ streamUid: stream.uid, version: 2, headHash: second.headHash, encoding: OPAQUE, state });
    const stored = await ana.clients.stream.uploadSnapshot(
      upload({ stream: stream.name, version: 2n, sizeBytes: 20n, snapshotHash: Buffer.from(hash) }, [state.slice(0, 8), state.slice(8, 16), state.slice(16)]),
    );
    expect(stored.header?.version).toBe(2n);
    const got = await snapshot(stream.name, 3n);
    expect(got.header.version).toBe(2n);
    expect([...got.data]).toEqual([...state]);
    expect(toHex(got.header.snapshotHash)).toBe(toHex(hash));
    // With a snapshot at 2, the stream can compact to 2, and the snapshot stays.
    const compacted = await ana.clients.stream.compactStream({ stream: stream.name, horizonVersion: 2n });
    expect(compacted.stream?.horizonVersion).toBe(2n);
    expect((await snapshot(stream.name)).header.version).toBe(2n);
    expect(await failure(ana.clients.stream.compactStream({ stream: stream.name, horizonVersion: 3n }))).toMatchObject({
      code: "NOT_FOUND",
      reason: "SNAPSHOT_NOT_FOUND",
    });
  });

  it("refuses bytes that do not match the header, storing nothing", async () => {
    const stream = await createStream("crdt", OPAQUE);
    const appended = await append(stream.name, new Uint8Array([1]));
    const state = new Uint8Array([9, 9, 9]);
    const hash = Buffer.from(snapshotHash({ streamUid: stream.uid, version: 1, headHash: appended.headHash, encoding: OPAQUE, state }));
    const header = { stream: stream.name, version: 1n, sizeBytes: 3n, snapshotHash: hash };
    expect(await failure(ana.clients.stream.uploadSnapshot(upload(header, [state, new Uint8Array([1])])))).toMatchObject({
      code: "INVALID_ARGUMENT",
      reason: "SNAPSHOT_MISMATCH",
    });
    expect(await failure(ana.clients.stream.uploadSnapshot(upload(header, [state.slice(0, 2)])))).toMatchObject({
      reason: "SNAPSHOT_MISMATCH",
    });
    expect(await failure(ana.clients.stream.uploadSnapshot(upload({ ...header, snapshotHash: Buffer.alloc(32) }, [state])))).toMatchObject({
      reason: "SNAPSHOT_MISMATCH",
    });
    expect((await snapshot(stream.name)).header.version).toBe(0n);
  });

  it("refuses oversize snapshots and chunks, JSON streams and bad headers", async () => {
    const opaque = await createStream("crdt", OPAQUE);
    expect(
      await failure(ana.clients.stream.uploadSnapshot(upload({ stream: opaque.name, version: 0n, sizeBytes: 65n, snapshotHash: Buffer.alloc(32) }, []))),
    ).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "SNAPSHOT_TOO_LARGE", metadata: { limit: "64" } });
    expect(
      await failure(
        ana.clients.stream.uploadSnapshot(upload({ stream: opaque.name, version: 0n, sizeBytes: 9n, snapshotHash: Buffer.alloc(32) }, [new Uint8Array(9)])),
      ),
    ).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_FIELD", fields: ["data"] });
    expect(
      await failure(ana.clients.stream.uploadSnapshot(upload({ stream: opaque.name, version: 1n, sizeBytes: 0n, snapshotHash: Buffer.alloc(32) }, []))),
    ).toMatchObject({ code: "OUT_OF_RANGE", reason: "VERSION_AHEAD_OF_HEAD" });
    const json = await createStream("doc", MERGE);
    expect(
      await failure(ana.clients.stream.uploadSnapshot(upload({ stream: json.name, version: 0n, sizeBytes: 0n, snapshotHash: Buffer.alloc(32) }, []))),
    ).toMatchObject({ code: "FAILED_PRECONDITION", reason: "ENCODING_UNSUPPORTED", metadata: { encoding: "DELTA_ENCODING_JSON_MERGE_PATCH" } });
    expect(
      await failure(ana.clients.stream.uploadSnapshot(upload({ stream: opaque.name, version: 0n, sizeBytes: 0n, snapshotHash: Buffer.alloc(3) }, []))),
    ).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_FIELD", fields: ["header.snapshot_hash"] });
  });

  it("stops streaming when the client cancels", async () => {
    const stream = await createStream("doc", MERGE);
    await append(stream.name, jsonBytes({ text: "x".repeat(50) }));
    const controller = new AbortController();
    const received: unknown[] = [];
    const error = await failure(async () => {
      for await (const part of ana.clients.stream.getSnapshot({ stream: stream.name }, { signal: controller.signal })) {
        received.push(part);
        controller.abort();
      }
    });
    expect(error.code).toContain("AbortError");
    expect(received.length).toBe(1);
  });
});

describe("CompactStream", () => {
  it("is idempotent below the horizon and refuses beyond the head", async () => {
    const stream = await createStream("doc", MERGE);
    for (let i = 1; i <= 3; i++) await append(stream.name, jsonBytes({ i }));
    await ana.clients.stream.compactStream({ stream: stream.name, horizonVersion: 2n });
    const again = await ana.clients.stream.compactStream({ stream: stream.name, horizonVersion: 1n });
    expect(again.stream?.horizonVersion).toBe(2n);
    expect(await failure(ana.clients.stream.compactStream({ stream: stream.name, horizonVersion: 4n }))).toMatchObject({
      code: "OUT_OF_RANGE",
      reason: "VERSION_AHEAD_OF_HEAD",
      metadata: { headVersion: "3" },
    });
  });

  it("runs by retention on its own when retainDeltas is set", async () => {
    await server.close();
    server = await startTestServer({ maintenanceIntervalMs: 20, sweepIntervalMs: 20, retainDeltas: 2 });
    ana = await server.signIn("course-a", "ana");
    const stream = await createStream("doc", MERGE);
    for (let i = 1; i <= 6; i++) await append(stream.name, jsonBytes({ i }));
    await expect
      .poll(async () => (await ana.clients.stream.getStream({ name: stream.name })).stream?.horizonVersion, { timeout: 3000 })
      .toBe(4n);
    expect(JSON.parse((await snapshot(stream.name)).data.toString())).toEqual({ i: 6 });
  });
});
