import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-progress-total-at-end-only",
  area: "PORT",
  caughtBy: ["portability-switch.cancel-ends-the-copy"],
  description: "A target sets records_total and lag_deltas only when a copy's bundle ends, so while it copies its progress reads 0 of 0 (PORT-057).",
  edits: [
    {
      file: "services/portability/migration.ts",
      find: "      await update({ recordsTotal: base.recordsTotal + total, lagDeltas: part.manifest.streams.reduce((n, s) => n + Number(s.deltaCount), 0) });\n",
      replace: "      void total;\n",
    },
  ],
});
