import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "append-gap-accepted",
  area: "APPEND",
  caughtBy: ["append.gap-refused"],
  description: "A client sequence that skips numbers is accepted.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: "      if (input.clientSequence > last + 1) {\n",
      replace: "      if (false) {\n",
    },
  ],
});
