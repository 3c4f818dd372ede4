import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "state-bound-refuses-exact",
  area: "LIMIT",
  caughtBy: ["append.json-state-bound"],
  description:
    "A JSON stream's state exactly at max_state_bytes (max_snapshot_bytes) is refused: the bound is applied as one byte less (LIMIT-020). Only a case that fills the state to the server's real bound catches it.",
  edits: [
    {
      file: "services/materialize.ts",
      find: "    maxStateBytes: limits.maxSnapshotBytes,\n",
      replace: "    maxStateBytes: limits.maxSnapshotBytes - 1,\n",
    },
  ],
});
