import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "state-size-unbounded",
  area: "LIMIT",
  description: "JSON deltas may grow a stream's state past max_snapshot_bytes (LIMIT-020).",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "return { maxStateBytes: limits.maxSnapshotBytes, maxCopyBytes: limits.maxDeltaBytes };",
      replace: "return { maxCopyBytes: limits.maxDeltaBytes };",
    },
  ],
});
