import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "snapshot-size-limit-inclusive",
  area: "SNAP",
  caughtBy: ["snapshot.upload-framing-at-its-edges"],
  description: "An upload whose size_bytes is exactly max_snapshot_bytes is refused as SNAPSHOT_TOO_LARGE, as if the limit were exclusive.",
  edits: [{ file: "services/stream-service.ts", find: "      if (header.sizeBytes > limits.maxSnapshotBytes) {", replace: "      if (header.sizeBytes >= limits.maxSnapshotBytes) {" }],
});
