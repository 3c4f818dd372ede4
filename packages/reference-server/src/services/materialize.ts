import type { JsonDeltaOptions } from "@continuity/sdk/protocol";
import type { ServerLimits } from "./deps.js";

/**
 * The bounds of server-side JSON materialization. States themselves are materialized by
 * `json-heads.ts` (the nearest stored state plus the deltas after it, in slices), for every
 * path: snapshots, compaction, retention and restore, so that each computes the same bytes the
 * snapshot hash commits to.
 */

/**
 * The bounds every server-side application of a JSON delta runs under: the state is bounded
 * like a snapshot (LIMIT-020), the values a delta copies count like its own bytes (LIMIT-021),
 * and so do the values it moves deeper (LIMIT-023), whose nesting must be checked; the array
 * items its insertions and removals by index shift are bounded by the snapshot bound
 * (LIMIT-024), so that one append shifts at most about as many items as a whole state at that
 * bound holds. Appends and imports both apply them, so no path can grow a state past them or
 * make a small patch cost more than they allow. Replays of stored deltas do not: those were
 * judged when they were appended.
 */
export function jsonBounds(limits: ServerLimits): JsonDeltaOptions {
  return {
    maxStateBytes: limits.maxSnapshotBytes,
    maxCopyBytes: limits.maxDeltaBytes,
    maxDeeperMoveBytes: limits.maxDeltaBytes,
    maxShiftedItems: limits.maxSnapshotBytes,
  };
}
