import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "append-retry-duplicates",
  area: "APPEND",
  caughtBy: ["append.reuse-with-different-content-refused"],
  description: "A retried client sequence appends again instead of replaying the stored outcome.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: "      if (stored !== undefined && input.clientSequence === last) {\n",
      replace: "      if (false) {\n",
    },
  ],
});
