import type { StreamRecord } from "../store/types.js";
import { Encoding } from "../store/types.js";
import type { ServiceDeps } from "./deps.js";

/** Streams examined per maintenance pass, so one pass never holds the loop for long. */
const STREAMS_PER_PASS = 50;

/**
 * Server-side retention (`retainDeltas`): keeps at most that many deltas above each
 * stream's horizon by moving the horizon up, exactly as CompactStream would. JSON streams
 * compact to `head - retain`; opaque streams only to a version with an uploaded snapshot,
 * because the server cannot rebuild their state. Returns how many streams were compacted.
 */
export async function compactForRetention(deps: ServiceDeps, retainDeltas: number): Promise<number> {
  const candidates = await deps.store.listRetentionCandidates(retainDeltas, STREAMS_PER_PASS);
  let compacted = 0;
  for (const stream of candidates) {
    const horizon = await retentionHorizon(deps, stream, retainDeltas);
    if (horizon === undefined || horizon <= stream.horizonVersion) continue;
    let stateAtHorizon: Uint8Array | undefined;
    if (stream.encoding !== Encoding.Opaque) {
      // In slices, like GetSnapshot: a state near max_snapshot_bytes never stalls other calls.
      const materialized = await deps.jsonHeads.canonicalBytes(stream, horizon);
      if (!("bytes" in materialized)) continue;
      stateAtHorizon = materialized.bytes;
    }
    const result = await deps.store.compactStream({
      subjectId: stream.subjectId,
      streamId: stream.id,
      horizonVersion: horizon,
      stateAtHorizon,
      now: deps.clock(),
    });
    if (result.kind === "compacted") compacted++;
  }
  return compacted;
}

async function retentionHorizon(deps: ServiceDeps, stream: StreamRecord, retain: number): Promise<number | undefined> {
  const target = stream.headVersion - retain;
  if (stream.encoding !== Encoding.Opaque) return target;
  const snapshot = await deps.store.findSnapshot(stream.subjectId, stream.id, target);
  return snapshot?.version;
}
