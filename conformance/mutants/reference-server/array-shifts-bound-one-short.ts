import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "array-shifts-bound-one-short",
  area: "LIMIT",
  caughtBy: ["append.json-array-shifts-bound"],
  description: "An append that shifts exactly max_snapshot_bytes array items is refused: the bound is enforced one item short of what is advertised (LIMIT-024, LIMIT-002).",
  edits: [
    {
      file: "services/materialize.ts",
      find: "    maxShiftedItems: limits.maxSnapshotBytes,\n",
      replace: "    maxShiftedItems: limits.maxSnapshotBytes - 1,\n",
    },
  ],
});
