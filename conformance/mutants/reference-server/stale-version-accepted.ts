import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "stale-version-accepted",
  area: "APPEND",
  caughtBy: ["append.check-order"],
  description: "An expected_version below the head is accepted instead of ABORTED.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: "    if (input.expectedVersion !== undefined && input.expectedVersion !== row.head_version) {\n",
      replace: "    if (input.expectedVersion !== undefined && input.expectedVersion > row.head_version) {\n",
    },
  ],
});
