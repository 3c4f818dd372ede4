import type { CallContext, ServerMiddlewareCall } from "nice-grpc-common";
import { afterEach, describe, expect, it } from "vitest";
import type { AuthCallContextExt } from "../../auth/context.js";
import { createPostgresStore, type PostgresStore } from "../../store/postgres/pg-store.js";
import { Encoding, Policy, type AppendResult } from "../../store/types.js";
import { openTestPostgresStore, TEST_DATABASE_URL } from "../../testing/postgres.js";
import { createSubjectGate } from "./subject-gate.js";

// The gate on two replicas of one PostgreSQL schema (CONTINUITY_REPLICAS=2 behind a proxy):
// the switch runs on one, a device's write arrives at the other.

const now = new Date("2026-01-01T00:00:00Z");
const hash = (n: number) => new Uint8Array(32).fill(n);
const UID = "00000000-0000-4000-8000-000000000001";
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function twoReplicas(): Promise<[PostgresStore, PostgresStore]> {
  const first = await openTestPostgresStore();
  cleanups.push(first.close);
  const second = await createPostgresStore({ url: TEST_DATABASE_URL, schema: first.schema, poolSize: 2 });
  cleanups.push(() => second.close());
  await first.store.createSubjectWithLink({ subjectId: "s1", linkId: "l1", platformId: "p", accountId: "acct", now });
  await first.store.createStream({
    subjectId: "s1",
    id: "st",
    uid: UID,
    type: "org.example.t",
    encoding: Encoding.Opaque,
    conflictPolicy: Policy.AllowBlindAppend,
    ownerPlatformId: "p",
    genesisHash: hash(0),
    initialState: undefined,
    maxStreamsPerSubject: 10,
    now,
  });
  return [first.store, second];
}

function append(store: PostgresStore, seq: number): Promise<AppendResult> {
  return store.appendBatch({
    subjectId: "s1",
    streamId: "st",
    streamUid: UID,
    deviceId: "d",
    clientSequence: seq,
    fingerprint: new Uint8Array([seq]),
    expectedVersion: undefined,
    now,
    build: ({ stream }) => ({ deltas: [{ payload: new Uint8Array([seq]), prevHash: stream.headHash, hash: hash(stream.headVersion + 1) }] }),
  });
}

/** An AppendDeltas call through `gate` whose handler first waits for `ahead`. */
async function appendThrough(gate: ReturnType<typeof createSubjectGate>, store: PostgresStore, seq: number, ahead: Promise<void>, passedDoor: () => void): Promise<AppendResult> {
  const call = {
    method: { path: "/continuity.v1.StreamService/AppendDeltas", requestStream: false, responseStream: false },
    request: {},
    async *next() {
      passedDoor();
      await ahead;
      const result = await append(store, seq);
      // As the stream service does: a refusal is thrown, and the gate judges it.
      if (result.kind === "rejected") throw result.error;
      return result;
    },
  } as unknown as ServerMiddlewareCall<unknown, AppendResult, AuthCallContextExt>;
  const context = { auth: { subjectId: "s1" }, signal: new AbortController().signal } as unknown as CallContext & AuthCallContextExt;
  const run = gate.middleware(call, context);
  for (;;) {
    const step = await run.next();
    if (step.done === true) return step.value as AppendResult;
  }
}

describe("the subject gate on two replicas (postgres)", () => {
  it("answers SUBJECT_MOVED to a write that passed the other replica's door before the switch committed and reached its transaction after", async () => {
    const [switching, serving] = await twoReplicas();
    const gateA = createSubjectGate(switching);
    const gateB = createSubjectGate(serving);
    const hold = await gateA.hold("s1", { maxHoldMs: 10_000, drainTimeoutMs: 1_000 });

    // The write passes replica B's door (no move recorded yet) and is slow to reach its
    // transaction, as on a loaded machine: the switch commits on replica A meanwhile.
    let doorPassed!: () => void;
    const atDoor = new Promise<void>((resolve) => (doorPassed = resolve));
    let committed!: () => void;
    const afterCommit = new Promise<void>((resolve) => (committed = resolve));
    const write = appendThrough(gateB, serving, 1, afterCommit, doorPassed).then(
      (result) => result,
      (error: unknown) => error,
    );
    await atDoor;
    await hold.commit({ subjectId: "s1", target: "127.0.0.1:2", targetSubject: "subjects/elsewhere", movedAt: now });
    committed();

    const outcome = await write;
    expect((outcome as { extra?: { reason?: string }[] }).extra?.[0]?.reason, `the write was answered ${(outcome as { kind?: string }).kind ?? String(outcome)}`).toBe("SUBJECT_MOVED");
    expect(await serving.listDeltas("s1", "st", 0, 10)).toEqual([]);
  });
});
