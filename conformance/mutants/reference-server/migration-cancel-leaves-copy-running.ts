import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-cancel-leaves-copy-running",
  area: "PORT",
  caughtBy: ["portability-switch.cancel-ends-the-copy"],
  description: "A target's cancel leaves the copy's ExportSubject running, so a cancelled migration waits for the source's bundle to end before it stops (PORT-056, PORT-037).",
  edits: [
    {
      file: "services/portability/migration.ts",
      find: "      if (!state.committing) calls.abort();\n",
      replace: "",
    },
  ],
});
