import type { JsonDeltaOptions, NotApplicableReason } from "@continuity/sdk/protocol";
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

/**
 * The refusal of a patch that passed one of {@link jsonBounds}' bounds, given the SDK's
 * reason: RESOURCE_EXHAUSTED with this error reason and, as metadata `limit`, the bound passed
 * (errors.md); undefined for reasons that are no bound (PATCH_NOT_APPLICABLE). Appends and
 * imports each name the delta or record it concerns.
 */
export function refusedBound(reason: NotApplicableReason, limits: ServerLimits): { readonly reason: "SNAPSHOT_TOO_LARGE" | "DELTA_TOO_LARGE"; readonly limit: number; readonly message: string } | undefined {
  switch (reason) {
    case "state-too-large":
      // LIMIT-020: a JSON stream's state is what its snapshots carry, so it has their bound.
      return { reason: "SNAPSHOT_TOO_LARGE", limit: limits.maxSnapshotBytes, message: `the stream's state would exceed max_state_bytes (max_snapshot_bytes, ${limits.maxSnapshotBytes} bytes)` };
    case "copies-too-large":
      return { reason: "DELTA_TOO_LARGE", limit: limits.maxDeltaBytes, message: `the copy operations would insert more than max_delta_bytes (${limits.maxDeltaBytes} bytes)` };
    case "moves-too-large":
      return { reason: "DELTA_TOO_LARGE", limit: limits.maxDeltaBytes, message: `the move operations to deeper places would carry more than max_delta_bytes (${limits.maxDeltaBytes} bytes)` };
    case "shifts-too-large":
      return { reason: "DELTA_TOO_LARGE", limit: limits.maxSnapshotBytes, message: `the operations would shift more than max_snapshot_bytes (${limits.maxSnapshotBytes}) array items` };
    default:
      return undefined;
  }
}
