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
 * like a snapshot (LIMIT-020), and the values a delta copies count like its own bytes
 * (LIMIT-021). Appends and imports both apply them, so no path can grow a state past them.
 */
export function jsonBounds(limits: ServerLimits): JsonDeltaOptions {
  return { maxStateBytes: limits.maxSnapshotBytes, maxCopyBytes: limits.maxDeltaBytes };
}
