import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { applyJsonDelta, checkpointDigest, toHex, type JsonValue } from "@continuity/sdk/protocol";
import { collect, failure, jsonBytes, startTestServer, type Session, type TestServer } from "../../src/testing/harness.js";
import { parseCursor } from "../../src/services/subscription-service.js";

const v1 = continuity.v1;
const MERGE = v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;
const PATCH = v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
const OPAQUE = v1.DeltaEncoding.DELTA_ENCODING_OPAQUE;

let server: TestServer;
let ana: Session;

beforeEach(async () => {
  server = await startTestServer({ maintenanceIntervalMs: 0 });
  ana = await server.signIn("course-a", "ana");
});
afterEach(async () => {
  await server.close();
});

async function createStream(session: Session, id: string, encoding: continuity.v1.DeltaEncoding = MERGE) {
  const { stream } = await session.clients.stream.createStream({
    parent: session.subject,
    streamId: id,
    stream: { type: "org.example.progress", encoding, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  return stream!;
}

const sequences = new Map<string, number>();
beforeEach(() => sequences.clear());
function append(session: Session, stream: string, payload: unknown) {
  const key = `${session.deviceId}:${stream}`;
  const seq = (sequences.get(key) ?? 0) + 1;
  sequences.set(key, seq);
  return session.clients.stream.appendDeltas({
    stream,
    clientSequence: BigInt(seq),
    deltas: [{ payload: payload instanceof Uint8Array ? Buffer.from(payload) : jsonBytes(payload) }],
  });
}

const resume = { activityType: "org.example.lesson", resource: "course-42", position: "lesson-4/t=312.5", fallbackUrl: "https://example.org/c/42", attributes: { lang: "en" } };

async function state(stream: string) {
  const parts = await collect(ana.clients.stream.getSnapshot({ stream }));
  return JSON.parse(Buffer.concat(parts.slice(1).map((p) => (p.part?.$case === "data" ? p.part.value : Buffer.alloc(0)))).toString());
}

describe("CreateCheckpoint / Get / List / Delete", () => {
  it("captures streams atomically with a digest over entries and resume payload", async () => {
    const a = await createStream(ana, "a");
    const b = await createStream(ana, "b");
    await append(ana, a.name, { x: 1 });
    const bHead = await append(ana, b.name, { y: 1 });
    await append(ana, b.name, { y: 2 });
    const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({
      parent: ana.subject,
      checkpointId: "cp-1",
      streams: [{ stream: b.name, version: 1n }, { stream: a.name }],
      resume,
    });
    expect(checkpoint!.name).toBe(`${ana.subject}/checkpoints/cp-1`);
    expect(checkpoint!.entries.map((e) => e.streamUid)).toEqual([a.uid, b.uid].sort());
    const bEntry = checkpoint!.entries.find((e) => e.streamUid === b.uid)!;
    expect(bEntry.version).toBe(1n);
    expect(bEntry.headHash).toEqual(bHead.headHash);
    const digest = checkpointDigest({
      entries: checkpoint!.entries.map((e) => ({ streamUid: e.streamUid, version: e.version, headHash: e.headHash })),
      resume,
    });
    expect(toHex(checkpoint!.digest)).toBe(toHex(digest));
    expect(checkpoint!.device).toBe(`${ana.subject}/devices/device-1`);
    const got = await ana.clients.checkpoint.getCheckpoint({ name: checkpoint!.name });
    expect(got.checkpoint).toEqual(checkpoint);
  });

  it("refuses duplicates, missing streams, versions out of range and oversized resume payloads", async () => {
    const a = await createStream(ana, "a");
    await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "cp", streams: [{ stream: a.name }], resume });
    expect(
      await failure(ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "cp", streams: [{ stream: a.name }] })),
    ).toMatchObject({ code: "ALREADY_EXISTS", reason: "CHECKPOINT_ALREADY_EXISTS" });
    expect(
      await failure(
        ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "", streams: [{ stream: `${ana.subject}/streams/nope` }] }),
      ),
    ).toMatchObject({ code: "NOT_FOUND", reason: "STREAM_NOT_FOUND" });
    expect(
      await failure(ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "", streams: [{ stream: a.name, version: 1n }] })),
    ).toMatchObject({ code: "OUT_OF_RANGE", reason: "VERSION_AHEAD_OF_HEAD" });
    expect(
      await failure(
        ana.clients.checkpoint.createCheckpoint({
          parent: ana.subject,
          checkpointId: "",
          streams: [{ stream: a.name }],
          resume: { ...resume, attributes: { blob: "x".repeat(4096) } },
        }),
      ),
    ).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "RESUME_PAYLOAD_TOO_LARGE", metadata: { limit: "4096" } });
    const invalid = await failure(
      ana.clients.checkpoint.createCheckpoint({
        parent: ana.subject,
        checkpointId: "",
        streams: [{ stream: a.name }, { stream: a.name }],
        resume: { ...resume, fallbackUrl: "http://insecure.example" },
      }),
    );
    expect(invalid).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_FIELD" });
    expect([...invalid.fields].sort()).toEqual(["resume.fallback_url", "streams"]);
  });

  it("lists newest first with paging, and deletes", async () => {
    const a = await createStream(ana, "a");
    for (const id of ["c1", "c2", "c3"]) {
      await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: id, streams: [{ stream: a.name }] });
    }
    const first = await ana.clients.checkpoint.listCheckpoints({ parent: ana.subject, pageSize: 2, pageToken: "" });
    expect(first.checkpoints.map((c) => c.name.split("/").pop())).toEqual(["c3", "c2"]);
    const second = await ana.clients.checkpoint.listCheckpoints({ parent: ana.subject, pageSize: 2, pageToken: first.nextPageToken });
    expect(second.checkpoints.map((c) => c.name.split("/").pop())).toEqual(["c1"]);
    expect(second.nextPageToken).toBe("");
    await ana.clients.checkpoint.deleteCheckpoint({ name: `${ana.subject}/checkpoints/c2` });
    expect(await failure(ana.clients.checkpoint.getCheckpoint({ name: `${ana.subject}/checkpoints/c2` }))).toMatchObject({
      code: "NOT_FOUND",
      reason: "CHECKPOINT_NOT_FOUND",
    });
  });

  it("hides checkpoints over streams the platform may not read", async () => {
    const a = await createStream(ana, "a");
    const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "cp", streams: [{ stream: a.name }] });
    const onB = await server.link(ana, "course-b", "ana-b", { deviceId: "tablet" });
    expect(await failure(onB.clients.checkpoint.getCheckpoint({ name: checkpoint!.name }))).toMatchObject({ code: "NOT_FOUND" });
    expect((await onB.clients.checkpoint.listCheckpoints({ parent: ana.subject, pageSize: 0, pageToken: "" })).checkpoints).toEqual([]);
  });
});

describe("RestoreCheckpoint", () => {
  it("appends one compensating delta per differing stream and rewrites nothing", async () => {
    const merge = await createStream(ana, "m", MERGE);
    const patch = await createStream(ana, "p", PATCH);
    const same = await createStream(ana, "s", MERGE);
    await append(ana, merge.name, { lesson: 3, done: ["l1"] });
    await append(ana, patch.name, [{ op: "add", path: "/items", value: [1, 2] }]);
    await append(ana, same.name, { k: 1 });
    const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({
      parent: ana.subject,
      checkpointId: "before",
      streams: [{ stream: merge.name }, { stream: patch.name }, { stream: same.name }],
    });
    await append(ana, merge.name, { lesson: 5, extra: true });
    await append(ana, patch.name, [{ op: "add", path: "/items/-", value: 3 }, { op: "add", path: "/title", value: "t" }]);

    const { streams } = await ana.clients.checkpoint.restoreCheckpoint({ name: checkpoint!.name });
    const byName = new Map(streams.map((s) => [s.stream, s]));
    expect(byName.get(merge.name)!.version).toBe(3n);
    expect(byName.get(patch.name)!.version).toBe(3n);
    expect(byName.get(same.name)!.version).toBe(0n);
    expect(await state(merge.name)).toEqual({ lesson: 3, done: ["l1"] });
    expect(await state(patch.name)).toEqual({ items: [1, 2] });
    // History is intact: the original deltas are still there, before the compensating one.
    const history = await ana.clients.stream.listDeltas({ stream: merge.name, afterVersion: 0n, pageSize: 0, pageToken: "" });
    expect(history.deltas.map((d) => d.version)).toEqual([1n, 2n, 3n]);
    expect(history.deltas[2]!.clientSequence).toBe(0n);
    expect(history.deltas[2]!.hash).toEqual(byName.get(merge.name)!.headHash);
  });

  it("puts a state back with a compensating delta over 1 MiB, and later appends edit it as any head (LIMIT-022)", async () => {
    // Such a delta is not applied to the held head: the checkpoint's state becomes the head.
    // Replaying the deltas from the start must give what the server holds, before and after
    // further appends.
    for (const [encoding, empty, edits] of [
      [MERGE, [], [{ big: { added: 1 } }, { list: [1, 2, 9], m2: null }]],
      [PATCH, [{ op: "replace", path: "", value: {} }], [[{ op: "add", path: "/big/added", value: 1 }], [{ op: "add", path: "/list/-", value: 9 }, { op: "remove", path: "/m2" }]]],
    ] as const) {
      const stream = await createStream(ana, `wide-${encoding}`, encoding);
      for (let i = 0; i < 16; i++) {
        const member = { [`m${i}`]: "q".repeat(100_000) };
        await append(ana, stream.name, encoding === MERGE ? member : [{ op: "add", path: `/m${i}`, value: member[`m${i}`] }]);
      }
      const nested = { big: { inner: "r".repeat(50_000) }, list: [1, 2] };
      await append(ana, stream.name, encoding === MERGE ? nested : [{ op: "add", path: "/big", value: nested.big }, { op: "add", path: "/list", value: nested.list }]);
      const atCheckpoint = await state(stream.name);
      const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: `wide-${encoding}`, streams: [{ stream: stream.name }] });
      await append(ana, stream.name, empty);
      const { streams } = await ana.clients.checkpoint.restoreCheckpoint({ name: checkpoint!.name });
      expect(streams[0]!.version).toBe(19n);
      expect(await state(stream.name)).toEqual(atCheckpoint);
      for (const edit of edits) await append(ana, stream.name, edit);
      const history = await ana.clients.stream.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 0, pageToken: "" });
      expect(history.deltas[18]!.payload.length).toBeGreaterThan(1024 * 1024);
      let replayed: JsonValue = {};
      for (const delta of history.deltas) replayed = applyJsonDelta(replayed, encoding, delta.payload);
      const held = await state(stream.name);
      expect(held).toEqual(replayed);
      expect(held.big).toEqual({ inner: nested.big.inner, added: 1 });
      expect(held.list).toEqual([1, 2, 9]);
      expect(held.m2).toBeUndefined();
    }
  });

  it("appends at the head whatever the conflict policy", async () => {
    const { stream } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: "strict",
      stream: { type: "org.example.cart", encoding: MERGE, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_REQUIRE_EXPECTED_VERSION },
    });
    await ana.clients.stream.appendDeltas({ stream: stream!.name, clientSequence: 1n, expectedVersion: 0n, deltas: [{ payload: jsonBytes({ a: 1 }) }] });
    const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "", streams: [{ stream: stream!.name, version: 0n }] });
    const { streams } = await ana.clients.checkpoint.restoreCheckpoint({ name: checkpoint!.name });
    expect(streams[0]!.version).toBe(2n);
    expect(await state(stream!.name)).toEqual({});
  });

  it("refuses opaque streams without appending anything", async () => {
    const json = await createStream(ana, "j");
    const opaque = await createStream(ana, "o", OPAQUE);
    await append(ana, json.name, { a: 1 });
    const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({
      parent: ana.subject,
      checkpointId: "mixed",
      streams: [{ stream: json.name, version: 0n }, { stream: opaque.name }],
    });
    expect(await failure(ana.clients.checkpoint.restoreCheckpoint({ name: checkpoint!.name }))).toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "ENCODING_UNSUPPORTED",
      metadata: { encoding: "DELTA_ENCODING_OPAQUE" },
    });
    expect((await ana.clients.stream.getStream({ name: json.name })).stream?.headVersion).toBe(1n);
  });
});

describe("Handoffs", () => {
  async function offer(target?: string) {
    const a = await createStream(ana, "a");
    const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "cp", streams: [{ stream: a.name }], resume });
    const { handoff } = await ana.clients.checkpoint.offerHandoff({
      parent: ana.subject,
      checkpoint: checkpoint!.name,
      targetDevice: target ?? "",
      ttlSeconds: 0,
    });
    return { handoff: handoff!, checkpoint: checkpoint! };
  }

  it("is delivered to the other devices' subscriptions and accepted once", async () => {
    const tv = await server.signIn("course-a", "ana", { deviceId: "tv" });
    const phone = await server.signIn("course-a", "ana", { deviceId: "phone" });
    const tvFeed = tv.clients.subscription.subscribe({ parent: ana.subject, cursor: "", heartbeatSeconds: 0 })[Symbol.asyncIterator]();
    expect((await tvFeed.next()).value.event.$case).toBe("ready");
    const { handoff, checkpoint } = await offer();
    expect(handoff.state).toBe(v1.HandoffState.HANDOFF_STATE_OFFERED);
    let message = (await tvFeed.next()).value;
    while (message.event.$case !== "handoffOffered") message = (await tvFeed.next()).value;
    expect(message.event.value.handoff.name).toBe(handoff.name);
    expect(message.event.value.checkpoint.name).toBe(checkpoint.name);

    expect(await failure(ana.clients.checkpoint.acceptHandoff({ name: handoff.name }))).toMatchObject({
      code: "NOT_FOUND",
      reason: "HANDOFF_NOT_FOUND",
    });
    const accepted = await tv.clients.checkpoint.acceptHandoff({ name: handoff.name });
    expect(accepted.handoff?.state).toBe(v1.HandoffState.HANDOFF_STATE_ACCEPTED);
    expect(accepted.handoff?.resolvedBy).toBe(`${ana.subject}/devices/tv`);
    expect(accepted.checkpoint?.digest).toEqual(checkpoint.digest);
    const retried = await tv.clients.checkpoint.acceptHandoff({ name: handoff.name });
    expect(retried.handoff).toEqual(accepted.handoff);
    expect(retried.checkpoint?.digest).toEqual(checkpoint.digest);
    expect(await failure(tv.clients.checkpoint.declineHandoff({ name: handoff.name }))).toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "HANDOFF_RESOLVED",
    });
    expect(await failure(phone.clients.checkpoint.acceptHandoff({ name: handoff.name }))).toMatchObject({
      code: "FAILED_PRECONDITION",
      reason: "HANDOFF_RESOLVED",
      metadata: { state: "HANDOFF_STATE_ACCEPTED" },
    });
    message = (await tvFeed.next()).value;
    expect(message.event.$case).toBe("handoffResolved");
    await tvFeed.return?.();
  });

  it("lets only the target device resolve a targeted offer, and declines", async () => {
    await server.signIn("course-a", "ana", { deviceId: "tv" });
    const phone = await server.signIn("course-a", "ana", { deviceId: "phone" });
    const tv = await server.signIn("course-a", "ana", { deviceId: "tv" });
    const { handoff } = await offer(`${ana.subject}/devices/tv`);
    expect(await failure(phone.clients.checkpoint.declineHandoff({ name: handoff.name }))).toMatchObject({ code: "NOT_FOUND" });
    const declined = await tv.clients.checkpoint.declineHandoff({ name: handoff.name });
    expect(declined.handoff?.state).toBe(v1.HandoffState.HANDOFF_STATE_DECLINED);
  });

  it("refuses unknown target devices and the caller as target", async () => {
    const a = await createStream(ana, "a");
    const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "cp", streams: [{ stream: a.name }] });
    expect(
      await failure(
        ana.clients.checkpoint.offerHandoff({ parent: ana.subject, checkpoint: checkpoint!.name, targetDevice: `${ana.subject}/devices/ghost`, ttlSeconds: 0 }),
      ),
    ).toMatchObject({ code: "NOT_FOUND", reason: "DEVICE_NOT_FOUND" });
    expect(
      await failure(
        ana.clients.checkpoint.offerHandoff({ parent: ana.subject, checkpoint: checkpoint!.name, targetDevice: `${ana.subject}/devices/device-1`, ttlSeconds: 0 }),
      ),
    ).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_FIELD", fields: ["target_device"] });
  });

  it("expires unresolved offers, and when their checkpoint is deleted", async () => {
    let now = Date.now();
    await server.close();
    server = await startTestServer({ maintenanceIntervalMs: 0, clock: () => new Date(now) });
    ana = await server.signIn("course-a", "ana");
    const tv = await server.signIn("course-a", "ana", { deviceId: "tv" });
    const { handoff } = await offer();
    now += 301_000;
    const got = await ana.clients.checkpoint.getHandoff({ name: handoff.name });
    expect(got.handoff?.state).toBe(v1.HandoffState.HANDOFF_STATE_EXPIRED);
    expect(await failure(tv.clients.checkpoint.acceptHandoff({ name: handoff.name }))).toMatchObject({
      reason: "HANDOFF_RESOLVED",
      metadata: { state: "HANDOFF_STATE_EXPIRED" },
    });

    const { handoff: second } = await ana.clients.checkpoint.offerHandoff({
      parent: ana.subject,
      checkpoint: `${ana.subject}/checkpoints/cp`,
      targetDevice: "",
      ttlSeconds: 60,
    });
    await ana.clients.checkpoint.deleteCheckpoint({ name: `${ana.subject}/checkpoints/cp` });
    expect((await ana.clients.checkpoint.getHandoff({ name: second!.name })).handoff?.state).toBe(v1.HandoffState.HANDOFF_STATE_EXPIRED);
  });

  it("keeps a handoff hidden from a platform that may not read its checkpoint after the checkpoint is deleted", async () => {
    const onB = await server.link(ana, "course-b", "ana-b", { deviceId: "tablet" });
    const tv = await server.signIn("course-a", "ana", { deviceId: "tv" });
    const feeds = [tv, onB].map((s) => s.clients.subscription.subscribe({ parent: ana.subject, cursor: "", heartbeatSeconds: 1 })[Symbol.asyncIterator]());
    for (const feed of feeds) expect((await feed.next()).value.event.$case).toBe("ready");
    const { handoff, checkpoint } = await offer();
    const hidden = { code: "NOT_FOUND", reason: "HANDOFF_NOT_FOUND" };
    expect(await failure(onB.clients.checkpoint.getHandoff({ name: handoff.name }))).toMatchObject(hidden);

    await ana.clients.checkpoint.deleteCheckpoint({ name: checkpoint.name });
    // The platform that may read the stream still sees the expiry...
    expect((await tv.clients.checkpoint.getHandoff({ name: handoff.name })).handoff?.state).toBe(v1.HandoffState.HANDOFF_STATE_EXPIRED);
    let resolved = (await feeds[0]!.next()).value;
    while (resolved.event.$case !== "handoffResolved") resolved = (await feeds[0]!.next()).value;
    expect(resolved.event.value.handoff.state).toBe(v1.HandoffState.HANDOFF_STATE_EXPIRED);
    // ...the other one gets neither the handoff nor its event, only a heartbeat past them.
    expect(await failure(onB.clients.checkpoint.getHandoff({ name: handoff.name }))).toMatchObject(hidden);
    const seenByB: string[] = [];
    for (;;) {
      const m = (await feeds[1]!.next()).value;
      seenByB.push(m.event.$case);
      if (m.event.$case === "heartbeat" && parseCursor(m.cursor)!.sequence >= parseCursor(resolved.cursor)!.sequence) break;
    }
    expect(seenByB.filter((kind) => kind !== "heartbeat")).toEqual([]);
    for (const feed of feeds) await feed.return?.();
  });
});

describe("profiles", () => {
  it("judges the token before the profile, so an anonymous caller learns nothing else first (ERR-010)", async () => {
    expect(await failure(server.anonymous.portability.getMigration({ name: "x" }))).toMatchObject({ code: "UNAUTHENTICATED", reason: "TOKEN_MISSING" });
  });
});

describe("GetServerInfo", () => {
  it("describes versions, profiles, limits, audience and epoch without a token", async () => {
    const info = await server.anonymous.serverInfo.getServerInfo({});
    expect(info.protocolVersions).toEqual(["1"]);
    expect(info.profiles).toEqual([v1.Profile.PROFILE_CORE, v1.Profile.PROFILE_IDENTITY, v1.Profile.PROFILE_PORTABILITY]);
    // PORT-013: the key set names the key that signs bundles, and holds no private part.
    const jwks = JSON.parse(info.bundleSigningJwks) as { keys: { kid?: string; d?: string }[] };
    expect(jwks.keys.map((k) => [k.kid, k.d])).toEqual([[server.server.deps.tokens.publicJwk.kid, undefined]]);
    expect(info.limits).toMatchObject({ maxDeltaBytes: 262144, maxResumePayloadBytes: 4096, maxSnapshotBytes: 67108864n, accessTokenSeconds: 900 });
    expect(info.assertionAudience).toBe("continuity");
    expect(info.epoch).toBe(server.server.deps.epoch);
    expect(info.implementation).toMatch(/^continuity-reference-server\//);
  });
});
