import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { canonicalJson, checkpointDigest, deltaHash, snapshotHash, toHex } from "@continuity/sdk/protocol";
import { configureFaults, fault, FAULTS, type FaultName } from "../../src/testing/faults.js";
import { formatCursor } from "../../src/services/subscription-service.js";
import { collect, describeFailure, failure, jsonBytes, startTestServer, type Session, type TestServer } from "../../src/testing/harness.js";

const v1 = continuity.v1;
const MERGE = v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH;
const PATCH = v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH;
const STRICT = v1.ConflictPolicy.CONFLICT_POLICY_REQUIRE_EXPECTED_VERSION;
const BLIND = v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND;
const ALLOW = { CONTINUITY_ALLOW_TEST_FAULTS: "1" };

describe("fault switch", () => {
  afterEach(() => {
    configureFaults([], ALLOW);
  });

  it("ignores requested faults unless the environment allows them", () => {
    expect(configureFaults(["append-gap-accepted"], {})).toEqual([]);
    expect(fault("append-gap-accepted")).toBe(false);
    expect(configureFaults(["append-gap-accepted"], ALLOW)).toEqual(["append-gap-accepted"]);
    expect(fault("append-gap-accepted")).toBe(true);
    expect(fault("append-retry-duplicates")).toBe(false);
  });

  it("refuses unknown fault names", () => {
    expect(() => configureFaults(["no-such-fault"], ALLOW)).toThrow(/unknown test fault/);
  });

  it("describes every fault with its requirement area", () => {
    for (const [name, info] of Object.entries(FAULTS)) {
      expect(name).toMatch(/^[a-z]+(-[a-z]+)+$/);
      expect(info.area).toMatch(/^[A-Z]+$/);
      expect(info.description.length).toBeGreaterThan(10);
    }
  });
});

/**
 * Each core fault must visibly break its guarantee at the real code point. These are not
 * conformance tests (the suite owns those); they prove every switch is wired, so a mutant
 * run that the suite fails to catch means a gap in the suite, not a dead switch.
 */
describe("core faults break what they name", () => {
  let server: TestServer;
  let ana: Session;
  let seq = 0;

  beforeAll(async () => {
    server = await startTestServer({ maintenanceIntervalMs: 0, limits: { maxDeltaBytes: 64 } });
    ana = await server.signIn("course-a", "ana");
  });
  afterAll(async () => {
    configureFaults([], ALLOW);
    await server.close();
  });

  let counter = 0;
  async function stream(encoding: continuity.v1.DeltaEncoding = MERGE, policy: continuity.v1.ConflictPolicy = BLIND) {
    counter += 1;
    seq = 0;
    const { stream: created } = await ana.clients.stream.createStream({
      parent: ana.subject,
      streamId: `s${counter}`,
      stream: { type: "org.example.t", encoding, conflictPolicy: policy },
    });
    return created!;
  }
  function append(name: string, payloads: unknown[], options: { seq?: number; expectedVersion?: number } = {}) {
    const clientSequence = options.seq ?? ++seq;
    return ana.clients.stream.appendDeltas({
      stream: name,
      clientSequence: BigInt(clientSequence),
      deltas: payloads.map((p) => ({ payload: p instanceof Uint8Array ? Buffer.from(p) : jsonBytes(p) })),
      ...(options.expectedVersion === undefined ? {} : { expectedVersion: BigInt(options.expectedVersion) }),
    });
  }
  async function deltas(name: string) {
    return (await ana.clients.stream.listDeltas({ stream: name, afterVersion: 0n, pageSize: 0, pageToken: "" })).deltas;
  }

  const scenarios: Record<string, () => Promise<void>> = {
    "append-retry-duplicates": async () => {
      const s = await stream();
      await append(s.name, [{ a: 1 }], { seq: 1 });
      const retry = await append(s.name, [{ a: 1 }], { seq: 1 });
      expect(retry.replayed).toBe(false);
      expect((await deltas(s.name)).length).toBe(2);
    },
    "append-gap-accepted": async () => {
      const s = await stream();
      await append(s.name, [{ a: 1 }], { seq: 5 });
    },
    "stale-version-accepted": async () => {
      const s = await stream();
      await append(s.name, [{ a: 1 }]);
      await append(s.name, [{ a: 2 }], { expectedVersion: 0 });
    },
    "strict-policy-ignored": async () => {
      const s = await stream(MERGE, STRICT);
      await append(s.name, [{ a: 1 }]);
    },
    "batch-partial-commit": async () => {
      const s = await stream(PATCH);
      await append(s.name, [[{ op: "add", path: "/a", value: 1 }], [{ op: "remove", path: "/missing" }]]);
      expect((await deltas(s.name)).length).toBe(1);
    },
    "delta-hash-wrong-bytes": async () => {
      const s = await stream();
      const sent = new TextEncoder().encode('{ "b":1, "a":2 }');
      const appended = await append(s.name, [sent]);
      const correct = deltaHash({ prevHash: s.headHash, version: 1, encoding: MERGE, payload: canonicalJson({ a: 2, b: 1 }) });
      expect(toHex(appended.headHash)).not.toBe(toHex(correct));
    },
    "chain-not-linked": async () => {
      const s = await stream();
      await append(s.name, [{ a: 1 }]);
      await append(s.name, [{ a: 2 }]);
      const [first, second] = await deltas(s.name);
      const linked = deltaHash({ prevHash: first!.hash, version: 2, encoding: MERGE, payload: second!.payload });
      expect(toHex(second!.hash)).not.toBe(toHex(linked));
    },
    "snapshot-hash-wrong": async () => {
      const s = await stream();
      const appended = await append(s.name, [{ a: 1 }]);
      const parts = await collect(ana.clients.stream.getSnapshot({ stream: s.name }));
      const header = parts[0]!.part!.$case === "header" ? parts[0]!.part!.value : undefined;
      const right = snapshotHash({ streamUid: s.uid, version: 1, headHash: appended.headHash, encoding: MERGE, state: canonicalJson({ a: 1 }) });
      expect(toHex(header!.snapshotHash)).not.toBe(toHex(right));
    },
    "snapshot-stale-state": async () => {
      const s = await stream();
      await append(s.name, [{ a: 1 }]);
      await append(s.name, [{ a: 2 }]);
      const parts = await collect(ana.clients.stream.getSnapshot({ stream: s.name }));
      const data = parts[1]!.part!.$case === "data" ? parts[1]!.part!.value.toString() : "";
      expect(JSON.parse(data)).toEqual({ a: 1 });
    },
    "list-deltas-off-by-one": async () => {
      const s = await stream();
      await append(s.name, [{ a: 1 }]);
      await append(s.name, [{ a: 2 }]);
      const listed = await ana.clients.stream.listDeltas({ stream: s.name, afterVersion: 1n, pageSize: 0, pageToken: "" });
      expect(listed.deltas[0]!.version).toBe(1n);
    },
    "horizon-not-enforced": async () => {
      const s = await stream();
      await append(s.name, [{ a: 1 }]);
      await append(s.name, [{ a: 2 }]);
      await ana.clients.stream.compactStream({ stream: s.name, horizonVersion: 1n });
      await ana.clients.stream.listDeltas({ stream: s.name, afterVersion: 0n, pageSize: 0, pageToken: "" });
    },
    "checkpoint-digest-ignores-resume": async () => {
      const s = await stream();
      const resume = { activityType: "org.example.x", resource: "r", position: "p", fallbackUrl: "", attributes: {} };
      const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "", streams: [{ stream: s.name }], resume });
      const right = checkpointDigest({ entries: [{ streamUid: s.uid, version: 0, headHash: s.headHash }], resume });
      expect(toHex(checkpoint!.digest)).not.toBe(toHex(right));
    },
    "resume-limit-ignored": async () => {
      const s = await stream();
      await ana.clients.checkpoint.createCheckpoint({
        parent: ana.subject,
        checkpointId: "",
        streams: [{ stream: s.name }],
        resume: { activityType: "", resource: "x".repeat(5000), position: "", fallbackUrl: "", attributes: {} },
      });
    },
    "restore-rewrites-history": async () => {
      const s = await stream();
      await append(s.name, [{ a: 1 }]);
      const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "", streams: [{ stream: s.name }] });
      await append(s.name, [{ a: 2 }]);
      await ana.clients.checkpoint.restoreCheckpoint({ name: checkpoint!.name });
      expect((await deltas(s.name)).length).toBe(1);
    },
    "handoff-double-accept": async () => {
      const s = await stream();
      const tv = await server.signIn("course-a", "ana", { deviceId: "tv" });
      const phone = await server.signIn("course-a", "ana", { deviceId: "phone" });
      const { checkpoint } = await ana.clients.checkpoint.createCheckpoint({ parent: ana.subject, checkpointId: "", streams: [{ stream: s.name }] });
      const { handoff } = await ana.clients.checkpoint.offerHandoff({ parent: ana.subject, checkpoint: checkpoint!.name, targetDevice: "", ttlSeconds: 0 });
      await tv.clients.checkpoint.acceptHandoff({ name: handoff!.name });
      await phone.clients.checkpoint.acceptHandoff({ name: handoff!.name });
    },
    "error-info-missing": async () => {
      const result = await failure(ana.clients.stream.getStream({ name: `${ana.subject}/streams/none` }));
      expect(result.code).toBe("NOT_FOUND");
      expect(result.reason).toBeUndefined();
    },
    "delta-size-limit-ignored": async () => {
      const s = await stream();
      await append(s.name, [{ big: "x".repeat(100) }]);
    },
    "invalid-json-accepted": async () => {
      const s = await stream();
      await append(s.name, [new TextEncoder().encode("{oops")]);
    },
    "reset-missing": async () => {
      const sub = ana.clients.subscription.subscribe({ parent: ana.subject, cursor: formatCursor({ epoch: "otherepoch", sequence: 0 }), heartbeatSeconds: 0 });
      const first = await sub[Symbol.asyncIterator]().next();
      expect(first.value.event.$case).toBe("ready");
    },
    "cursor-skips-event": async () => {
      const s = await stream();
      const versions = await resumeAfterOneOfThree(s.name);
      expect(versions).toEqual([3n]);
    },
    "cursor-duplicates-event": async () => {
      const s = await stream();
      const versions = await resumeAfterOneOfThree(s.name);
      expect(versions.slice(0, 1)).toEqual([1n]);
    },
    "batch-split-events": async () => {
      const s = await stream();
      const controller = new AbortController();
      const iterator = ana.clients.subscription.subscribe({ parent: ana.subject, cursor: "", heartbeatSeconds: 0 }, { signal: controller.signal })[Symbol.asyncIterator]();
      await iterator.next();
      await append(s.name, [{ a: 1 }, { b: 2 }]);
      const message = (await iterator.next()).value;
      controller.abort();
      expect(message.event.value.deltas.length).toBe(1);
    },
  };

  /** Appends v1..v3, then resumes from the cursor of v1 and returns the versions delivered. */
  async function resumeAfterOneOfThree(name: string): Promise<bigint[]> {
    const controller = new AbortController();
    const live = ana.clients.subscription.subscribe({ parent: ana.subject, cursor: "", heartbeatSeconds: 0 }, { signal: controller.signal })[Symbol.asyncIterator]();
    await live.next();
    await append(name, [{ n: 1 }]);
    const firstEvent = (await live.next()).value;
    controller.abort();
    await append(name, [{ n: 2 }]);
    await append(name, [{ n: 3 }]);
    const resumeController = new AbortController();
    const resumed = ana.clients.subscription
      .subscribe({ parent: ana.subject, cursor: firstEvent.cursor, heartbeatSeconds: 1 }, { signal: resumeController.signal })
      [Symbol.asyncIterator]();
    await resumed.next();
    const versions: bigint[] = [];
    while (versions.length < 2) {
      const message = (await resumed.next()).value;
      if (message.event.$case !== "deltasAppended") break;
      versions.push(...message.event.value.deltas.map((d: continuity.v1.Delta) => d.version));
    }
    resumeController.abort();
    return versions;
  }

  const core = Object.entries(FAULTS)
    .filter(([, info]) => ["APPEND", "HASH", "SNAP", "SUB", "DELTA", "COMPACT", "CKPT", "LIMIT", "RESTORE", "HANDOFF", "ERR"].includes(info.area))
    .map(([name]) => name as FaultName);

  it("has a scenario for every core fault", () => {
    expect(Object.keys(scenarios).sort()).toEqual([...core].sort());
  });

  for (const name of core) {
    it(`${name}: the scenario fails without the fault and passes with it`, async () => {
      const scenario = scenarios[name]!;
      configureFaults([], ALLOW);
      const healthy = await scenario().then(
        () => "passed",
        (error: unknown) => describeFailure(error),
      );
      expect(healthy).not.toBe("passed");
      configureFaults([name], ALLOW);
      await scenario();
    });
  }
});
