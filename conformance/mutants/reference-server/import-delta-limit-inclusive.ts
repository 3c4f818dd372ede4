import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-delta-limit-inclusive",
  area: "PORT",
  caughtBy: ["portability-edges.import-takes-records-as-written"],
  description: "ImportBundle refuses a delta record of exactly max_delta_bytes (PORT-049 refuses only larger ones).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "    if (d.payload.length > limits.maxDeltaBytes) throw",
      replace: "    if (d.payload.length >= limits.maxDeltaBytes) throw",
    },
  ],
});
