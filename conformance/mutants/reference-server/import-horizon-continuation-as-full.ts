import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-horizon-continuation-as-full",
  area: "PORT",
  caughtBy: ["portability-edges.incremental-from-the-horizon"],
  description:
    "ImportBundle takes a stream with a horizon and as many delta records as lie above it, but no snapshot record, as a full stream: it does not continue the stream the subject holds, so an incremental bundle from the horizon (a live migration of a stream compacted where the target holds it) is miscounted, and creates a stream without its state where the subject holds none (PORT-051).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "        current.undecided = false;\n        current.incremental = true;\n        await continueHeld(current, true);\n",
      replace: "        current.undecided = false;\n",
    },
  ],
});
