import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { canonicalJson, deltaHash, genesisHash, parseJsonDocument, snapshotHash, toHex } from "@continuity/sdk/protocol";
import { collect, failure, jsonBytes, startTestServer, type Session, type TestServer } from "../../src/testing/harness.js";

const v1 = continuity.v1;
const JSON_PATCH = v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
const MERGE = v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;
const OPAQUE = v1.DeltaEncoding.DELTA_ENCODING_OPAQUE;
const STRICT = v1.ConflictPolicy.CONFLICT_POLICY_REQUIRE_EXPECTED_VERSION;
const BLIND = v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND;

let server: TestServer;
let ana: Session;

beforeEach(async () => {
  server = await startTestServer({ maintenanceIntervalMs: 0 });
  ana = await server.signIn("course-a", "ana");
});
afterEach(async () => {
  await server.close();
});

async function createStream(
  session: Session,
  id: string,
  encoding: continuity.v1.DeltaEncoding = MERGE,
  policy: continuity.v1.ConflictPolicy = BLIND,
  type = "org.example.progress",
) {
  const { stream } = await session.clients.stream.createStream({
    parent: session.subject,
    streamId: id,
    stream: { type, encoding, conflictPolicy: policy },
  });
  return stream!;
}

function append(session: Session, stream: string, seq: number, payloads: unknown[], expectedVersion?: number) {
  return session.clients.stream.appendDeltas({
    stream,
    clientSequence: BigInt(seq),
    deltas: payloads.map((p) => ({ payload: p instanceof Uint8Array ? Buffer.from(p) : jsonBytes(p) })),
    ...(expectedVersion === undefined ? {} : { expectedVersion: BigInt(expectedVersion) }),
  });
}

describe("CreateStream / GetStream / ListStreams / DeleteStream", () => {
  it("creates a stream at version 0 whose head is the genesis hash", async () => {
    const stream = await createStream(ana, "course-42");
    expect(stream.name).toBe(`${ana.subject}/streams/course-42`);
    expect(stream.headVersion).toBe(0n);
    expect(stream.ownerPlatform).toBe("platforms/course-a");
    expect(toHex(stream.headHash)).toBe(toHex(genesisHash({ uid: stream.uid, type: stream.type, encoding: MERGE })));
    const got = await ana.clients.stream.getStream({ name: stream.name });
    expect(got.stream?.uid).toBe(stream.uid);
  });

  it("mints an id when none is given", async () => {
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: "",
      stream: { type: "org.example.cart", encoding: JSON_PATCH, conflictPolicy: STRICT },
    });
    expect(stream?.name).toMatch(new RegExp(`^${ana.subject}/streams/[a-z0-9]+$`));
  });

  it("refuses a duplicate id with ALREADY_EXISTS", async () => {
    await createStream(ana, "dup");
    expect(await failure(createStream(ana, "dup"))).toMatchObject({ code: "ALREADY_EXISTS", reason: "STREAM_ALREADY_EXISTS" });
  });

  it("answers INVALID_FIELD with a violation per bad field", async () => {
    const result = await failure(
      ana.clients.stream.createStream({
        parent: ana.subject,
        streamId: "Bad_Id",
        stream: { type: "nodot", encoding: 0, conflictPolicy: 0 },
      }),
    );
    expect(result).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_FIELD" });
    expect([...result.fields].sort()).toEqual(["stream.conflict_policy", "stream.encoding", "stream.type", "stream_id"]);
  });

  it("enforces the per-subject stream limit", async () => {
    await server.close();
    server = await startTestServer({ maintenanceIntervalMs: 0, limits: { maxStreamsPerSubject: 2 } });
    ana = await server.signIn("course-a", "ana");
    await createStream(ana, "s1");
    await createStream(ana, "s2");
    expect(await failure(createStream(ana, "s3"))).toMatchObject({
      code: "RESOURCE_EXHAUSTED",
      reason: "STREAM_LIMIT_REACHED",
      metadata: { limit: "2" },
    });
  });

  it("answers NOT_FOUND for another subject's stream, never PERMISSION_DENIED", async () => {
    const ben = await server.signIn("course-a", "ben");
    const stream = await createStream(ben, "private");
    const result = await failure(ana.clients.stream.getStream({ name: stream.name }));
    expect(result.code).toBe("NOT_FOUND");
    expect(await failure(createStream({ ...ana, subject: ben.subject }, "x"))).toMatchObject({ code: "NOT_FOUND" });
  });

  it("hides another platform's streams unless a grant shares them", async () => {
    await createStream(ana, "mine");
    const anaOnB = await server.signIn("course-b", "ana-b");
    // Different account on B is a different subject; same-subject visibility is covered by identity tests.
    expect((await anaOnB.clients.stream.listStreams({ parent: anaOnB.subject, pageSize: 0, pageToken: "", type: "" })).streams).toEqual(
      [],
    );
  });

  it("lists streams by name with page tokens bound to the request", async () => {
    for (const id of ["c", "a", "e", "b", "d"]) await createStream(ana, id, MERGE, BLIND, id === "e" ? "org.example.other" : "org.example.progress");
    const names: string[] = [];
    let token = "";
    do {
      const page = await ana.clients.stream.listStreams({ parent: ana.subject, pageSize: 2, pageToken: token, type: "" });
      expect(page.streams.length).toBeLessThanOrEqual(2);
      names.push(...page.streams.map((s) => s.name.split("/").pop()!));
      token = page.nextPageToken;
    } while (token !== "");
    expect(names).toEqual(["a", "b", "c", "d", "e"]);

    const typed = await ana.clients.stream.listStreams({ parent: ana.subject, pageSize: 0, pageToken: "", type: "org.example.other" });
    expect(typed.streams.map((s) => s.name.split("/").pop())).toEqual(["e"]);

    const first = await ana.clients.stream.listStreams({ parent: ana.subject, pageSize: 2, pageToken: "", type: "" });
    expect(
      await failure(ana.clients.stream.listStreams({ parent: ana.subject, pageSize: 2, pageToken: first.nextPageToken, type: "org.example.other" })),
    ).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_PAGE_TOKEN" });
    expect(
      await failure(ana.clients.stream.listStreams({ parent: ana.subject, pageSize: 2, pageToken: "garbage", type: "" })),
    ).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_PAGE_TOKEN" });
  });

  it("deletes a stream with its history", async () => {
    const stream = await createStream(ana, "gone");
    await append(ana, stream.name, 1, [{ a: 1 }]);
    await ana.clients.stream.deleteStream({ name: stream.name });
    expect(await failure(ana.clients.stream.getStream({ name: stream.name }))).toMatchObject({
      code: "NOT_FOUND",
      reason: "STREAM_NOT_FOUND",
    });
    const again = await createStream(ana, "gone");
    expect(again.uid).not.toBe(stream.uid);
    // Client sequences start over with the new stream.
    const appended = await append(ana, again.name, 1, [{ b: 2 }]);
    expect(appended.replayed).toBe(false);
  });
});

describe("AppendDeltas", () => {
  it("chains hashes over canonical payloads and materializes state", async () => {
    const stream = await createStream(ana, "p");
    const first = await append(ana, stream.name, 1, [new TextEncoder().encode('{ "b": 1, "a": 2 }')]);
    const payload = canonicalJson({ a: 2, b: 1 });
    const expected = deltaHash({ prevHash: stream.headHash, version: 1, encoding: MERGE, payload });
    expect(toHex(first.receipts[0]!.hash)).toBe(toHex(expected));
    expect(first.headVersion).toBe(1n);

    const second = await append(ana, stream.name, 2, [{ c: 3 }, { a: null }]);
    expect(second.receipts.map((r) => r.version)).toEqual([2n, 3n]);
    const listed = await ana.clients.stream.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 0, pageToken: "" });
    expect(listed.deltas.map((d) => d.version)).toEqual([1n, 2n, 3n]);
    expect(new TextDecoder().decode(listed.deltas[0]!.payload)).toBe('{"a":2,"b":1}');
    expect(listed.deltas[1]!.prevHash).toEqual(listed.deltas[0]!.hash);
    expect(listed.deltas[2]).toMatchObject({ batchFirstVersion: 2n, batchSize: 2, device: `${ana.subject}/devices/device-1`, clientSequence: 2n });

    const parts = await collect(ana.clients.stream.getSnapshot({ stream: stream.name }));
    const header = parts[0]!.part;
    expect(header?.$case).toBe("header");
    const data = Buffer.concat(parts.slice(1).map((p) => (p.part?.$case === "data" ? p.part.value : Buffer.alloc(0))));
    expect(parseJsonDocument(data)).toEqual({ b: 1, c: 3 });
    if (header?.$case === "header") {
      expect(header.value.version).toBe(3n);
      expect(toHex(header.value.headHash)).toBe(toHex(second.headHash));
      const hash = snapshotHash({ streamUid: stream.uid, version: 3, headHash: second.headHash, encoding: MERGE, state: data });
      expect(toHex(header.value.snapshotHash)).toBe(toHex(hash));
    }
  });

  it("replays an acknowledged client sequence without appending", async () => {
    const stream = await createStream(ana, "p");
    const first = await append(ana, stream.name, 1, [{ a: 1 }]);
    const retry = await append(ana, stream.name, 1, [{ a: 1 }]);
    expect(retry.replayed).toBe(true);
    expect(retry.receipts).toEqual(first.receipts);
    const got = await ana.clients.stream.getStream({ name: stream.name });
    expect(got.stream?.headVersion).toBe(1n);
    expect(await failure(append(ana, stream.name, 1, [{ a: 2 }]))).toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "CLIENT_SEQUENCE_REUSED",
      metadata: { clientSequence: "1" },
    });
  });

  it("refuses a gap and consumes no sequence on failure", async () => {
    const stream = await createStream(ana, "p");
    expect(await failure(append(ana, stream.name, 2, [{ a: 1 }]))).toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "CLIENT_SEQUENCE_GAP",
      metadata: { expectedSequence: "1" },
    });
    expect(await failure(append(ana, stream.name, 1, [{ a: 1 }], 5))).toMatchObject({ code: "ABORTED", reason: "VERSION_CONFLICT" });
    expect((await append(ana, stream.name, 1, [{ a: 1 }])).headVersion).toBe(1n);
  });

  it("keeps sequences per device", async () => {
    const stream = await createStream(ana, "p");
    const phone = await server.signIn("course-a", "ana", { deviceId: "phone" });
    await append(ana, stream.name, 1, [{ a: 1 }]);
    const fromPhone = await append(phone, stream.name, 1, [{ b: 1 }]);
    expect(fromPhone.replayed).toBe(false);
    expect(fromPhone.headVersion).toBe(2n);
  });

  it("enforces expected_version and the strict conflict policy", async () => {
    const stream = await createStream(ana, "cart", JSON_PATCH, STRICT);
    expect(await failure(append(ana, stream.name, 1, [[{ op: "add", path: "/x", value: 1 }]]))).toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "EXPECTED_VERSION_REQUIRED",
    });
    await append(ana, stream.name, 1, [[{ op: "add", path: "/x", value: 1 }]], 0);
    const conflict = await failure(append(ana, stream.name, 2, [[{ op: "add", path: "/y", value: 1 }]], 0));
    const head = (await ana.clients.stream.getStream({ name: stream.name })).stream!;
    expect(conflict).toMatchObject({
      code: "ABORTED",
      reason: "VERSION_CONFLICT",
      metadata: { headVersion: "1", headHash: toHex(head.headHash) },
    });
  });

  it("applies a batch all or nothing", async () => {
    const stream = await createStream(ana, "doc", JSON_PATCH);
    const result = await failure(
      append(ana, stream.name, 1, [[{ op: "add", path: "/a", value: 1 }], [{ op: "remove", path: "/missing" }]]),
    );
    expect(result).toMatchObject({ code: "FAILED_PRECONDITION", reason: "PATCH_NOT_APPLICABLE", metadata: { index: "1" } });
    const head = (await ana.clients.stream.getStream({ name: stream.name })).stream!;
    expect(head.headVersion).toBe(0n);
  });

  it("refuses malformed JSON payloads with their index", async () => {
    const stream = await createStream(ana, "doc", JSON_PATCH);
    const result = await failure(append(ana, stream.name, 1, [[], new TextEncoder().encode("{not json")]));
    expect(result).toMatchObject({ code: "INVALID_ARGUMENT", reason: "MALFORMED_PAYLOAD", metadata: { index: "1" } });
    const notPatch = await failure(append(ana, stream.name, 1, [{ op: "add" }]));
    expect(notPatch).toMatchObject({ code: "INVALID_ARGUMENT", reason: "MALFORMED_PAYLOAD", metadata: { index: "0" } });
  });

  it("judges patch structure before applicability, and payloads before write access and device", async () => {
    const stream = await createStream(ana, "doc", JSON_PATCH);
    const structural = await failure(append(ana, stream.name, 1, [[{ op: "remove", path: "/missing" }], [{ op: "jump", path: "/a" }]]));
    expect(structural).toMatchObject({ code: "INVALID_ARGUMENT", reason: "MALFORMED_PAYLOAD", metadata: { index: "1" } });
    const unbound = await server.signIn("course-a", "ana", { deviceId: null });
    expect(await failure(append(unbound, stream.name, 1, [new TextEncoder().encode("nope")]))).toMatchObject({
      reason: "MALFORMED_PAYLOAD",
    });
  });

  it("stores opaque payloads as sent", async () => {
    const stream = await createStream(ana, "crdt", OPAQUE);
    const bytes = new Uint8Array([0, 255, 1, 2]);
    const appended = await append(ana, stream.name, 1, [bytes]);
    expect(toHex(appended.headHash)).toBe(toHex(deltaHash({ prevHash: stream.headHash, version: 1, encoding: OPAQUE, payload: bytes })));
    const listed = await ana.clients.stream.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 0, pageToken: "" });
    expect([...listed.deltas[0]!.payload]).toEqual([...bytes]);
  });

  it("enforces size limits before anything else", async () => {
    await server.close();
    server = await startTestServer({ maintenanceIntervalMs: 0, limits: { maxDeltaBytes: 16, maxBatchDeltas: 2, maxBatchBytes: 20 } });
    ana = await server.signIn("course-a", "ana");
    const stream = await createStream(ana, "p");
    expect(await failure(append(ana, stream.name, 1, [{}, { big: "x".repeat(20) }]))).toMatchObject({
      code: "RESOURCE_EXHAUSTED",
      reason: "DELTA_TOO_LARGE",
      metadata: { limit: "16", index: "1" },
    });
    expect(await failure(append(ana, stream.name, 1, [{}, {}, {}]))).toMatchObject({
      code: "RESOURCE_EXHAUSTED",
      reason: "BATCH_TOO_LARGE",
      metadata: { limit: "2" },
    });
    expect(await failure(append(ana, stream.name, 1, [{ a: "1234567" }, { b: "1234567" }]))).toMatchObject({
      code: "RESOURCE_EXHAUSTED",
      reason: "BATCH_TOO_LARGE",
      metadata: { limit: "20" },
    });
  });

  it("needs a device-bound token and write access", async () => {
    const stream = await createStream(ana, "p");
    const unbound = await server.signIn("course-a", "ana", { deviceId: null });
    expect(await failure(append(unbound, stream.name, 1, [{}]))).toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "DEVICE_REQUIRED",
    });
    const reader = await server.signIn("course-a", "ana", { scope: "state.read" });
    expect(await failure(append(reader, stream.name, 1, [{}]))).toMatchObject({
      code: "PERMISSION_DENIED",
      reason: "SCOPE_INSUFFICIENT",
    });
  });

  it("commits concurrent appends from many devices as one consistent chain", async () => {
    const stream = await createStream(ana, "busy");
    const devices = await Promise.all(Array.from({ length: 8 }, (_, i) => server.signIn("course-a", "ana", { deviceId: `d${i}` })));
    await Promise.all(devices.flatMap((d) => [1, 2, 3].map((seq) => append(d, stream.name, seq, [{ [`${d.deviceId}`]: seq }]))).map((p) => p.catch((e: unknown) => e)));
    const listed = await ana.clients.stream.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 0, pageToken: "" });
    // Sequences 2 and 3 may have raced ahead of 1 on the same device and been refused as gaps;
    // whatever committed forms one gapless chain.
    expect(listed.deltas.map((d) => Number(d.version))).toEqual(listed.deltas.map((_, i) => i + 1));
    for (let i = 1; i < listed.deltas.length; i++) expect(listed.deltas[i]!.prevHash).toEqual(listed.deltas[i - 1]!.hash);
  });
});

describe("ListDeltas", () => {
  it("pages up to the head, refuses versions beyond it and below the horizon", async () => {
    const stream = await createStream(ana, "p");
    for (let seq = 1; seq <= 5; seq++) await append(ana, stream.name, seq, [{ n: seq }]);
    const versions: bigint[] = [];
    let token = "";
    do {
      const page = await ana.clients.stream.listDeltas({ stream: stream.name, afterVersion: 1n, pageSize: 2, pageToken: token });
      expect(page.headVersion).toBe(5n);
      versions.push(...page.deltas.map((d) => d.version));
      token = page.nextPageToken;
    } while (token !== "");
    expect(versions).toEqual([2n, 3n, 4n, 5n]);
    expect(await failure(ana.clients.stream.listDeltas({ stream: stream.name, afterVersion: 6n, pageSize: 0, pageToken: "" }))).toMatchObject({
      code: "OUT_OF_RANGE",
      reason: "VERSION_AHEAD_OF_HEAD",
      metadata: { headVersion: "5" },
    });
    const compacted = await ana.clients.stream.compactStream({ stream: stream.name, horizonVersion: 3n });
    expect(compacted.stream?.horizonVersion).toBe(3n);
    expect(await failure(ana.clients.stream.listDeltas({ stream: stream.name, afterVersion: 2n, pageSize: 0, pageToken: "" }))).toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "HISTORY_COMPACTED",
      metadata: { horizonVersion: "3" },
    });
    const rest = await ana.clients.stream.listDeltas({ stream: stream.name, afterVersion: 3n, pageSize: 0, pageToken: "" });
    expect(rest.deltas.map((d) => d.version)).toEqual([4n, 5n]);
    expect(rest.deltas[0]!.prevHash).toEqual(compacted.stream!.horizonHash);
  });
});
