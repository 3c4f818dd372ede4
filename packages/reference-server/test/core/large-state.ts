/**
 * Test support for work on whole JSON states of tens of megabytes (LIMIT-022): building one
 * over the wire, and measuring how long other calls wait while a server works on it.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { continuity } from "@continuity/sdk/gen";
import { jsonBytes, type Session, type TestServer } from "../../src/testing/harness.js";

/** Merge patches of 1 KB members, each at most `maxPatch` bytes, that build a state of about `bytes`. */
export function fillingPatches(bytes: number, maxPatch: number, prefix = "m"): Buffer[] {
  const member = "q".repeat(1000);
  const perPatch = Math.floor(maxPatch / 1012);
  const patches: Buffer[] = [];
  for (let i = 0, size = 2; size < bytes; ) {
    const patch: Record<string, string> = {};
    for (let j = 0; j < perPatch && size < bytes; j++, i++) {
      const key = `${prefix}${String(i).padStart(6, "0")}`;
      patch[key] = member;
      size += key.length + member.length + 6;
    }
    patches.push(jsonBytes(patch));
  }
  return patches;
}

/**
 * Merge patches, each at most `maxPatch` bytes, that build one object of `members` small
 * members (`{"w0000000":0,…}`): the widest state a test can build quickly, whose cost is its
 * member names rather than its bytes.
 */
export function widePatches(members: number, maxPatch: number): Buffer[] {
  const patches: Buffer[] = [];
  for (let i = 0; i < members; ) {
    const parts: string[] = [];
    for (let size = 2; i < members && size < maxPatch - 32; i++) {
      const member = `"w${String(i).padStart(7, "0")}":${i % 10}`;
      parts.push(member);
      size += member.length + 1;
    }
    patches.push(Buffer.from(`{${parts.join(",")}}`, "utf8"));
  }
  return patches;
}

/** Appends `patches` in batches as large as the limits allow; returns the next client sequence. */
export async function appendAll(session: Session, stream: string, patches: readonly Buffer[], firstSequence: number, limits: { maxBatchBytes: number; maxBatchDeltas: number }): Promise<number> {
  let sequence = firstSequence;
  for (let start = 0; start < patches.length; ) {
    let end = start;
    let bytes = 0;
    while (end < patches.length && end - start < limits.maxBatchDeltas && bytes + patches[end]!.length <= limits.maxBatchBytes - 4096) bytes += patches[end++]!.length;
    await session.clients.stream.appendDeltas({ stream, clientSequence: BigInt(sequence++), deltas: patches.slice(start, end).map((payload) => ({ payload })) });
    start = end;
  }
  return sequence;
}

/**
 * Runs `work` while another client calls GetServerInfo without pause, and reports the longest
 * event-loop delay seen (perf_hooks: the server shares this process) and the slowest call.
 */
export async function whileOthersCall(server: TestServer, work: () => Promise<void>): Promise<{ maxDelayMs: number; slowestCallMs: number }> {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  let done = false;
  let slowestCallMs = 0;
  const pinger = (async () => {
    while (!done) {
      const started = performance.now();
      await server.anonymous.serverInfo.getServerInfo({});
      slowestCallMs = Math.max(slowestCallMs, performance.now() - started);
    }
  })();
  try {
    await work();
  } finally {
    done = true;
    await pinger;
    histogram.disable();
  }
  return { maxDelayMs: histogram.max / 1e6, slowestCallMs };
}

/**
 * Ana's JSON Patch stream `doc` (blind appends) on `server`, and an `append` of JSON patches
 * with the next client sequence: a refused append does not use one up.
 */
export async function docStream(server: TestServer) {
  const v1 = continuity.v1;
  const ana = await server.signIn("course-a", "ana");
  const { stream } = await ana.clients.stream.createStream({
    parent: ana.subject,
    streamId: "doc",
    stream: { type: "org.example.doc", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  let sequence = 0;
  const append = async (payloads: unknown[]) => {
    const response = await ana.clients.stream.appendDeltas({
      stream: stream!.name,
      clientSequence: BigInt(sequence + 1),
      deltas: payloads.map((p) => ({ payload: jsonBytes(p) })),
    });
    sequence++;
    return response;
  };
  return { ana, stream: stream!, append };
}
