import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "array-shifts-unbounded",
  area: "LIMIT",
  caughtBy: ["append.json-array-shifts-bound"],
  description: "JSON Patch insertions and removals by index shift any number of array items, so a small patch of removals at the front of a long array costs its length at every operation (LIMIT-024).",
  edits: [
    {
      file: "services/materialize.ts",
      find: "    maxShiftedItems: limits.maxSnapshotBytes,\n",
      replace: "",
    },
  ],
});
