import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-mismatch-names-first-delta",
  area: "PORT",
  caughtBy: ["portability-edges.import-refuses-conflicting-streams"],
  description: "A delta record that differs from the history the subject holds is refused naming the first delta of its transaction instead of itself (PORT-048).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "const at = batch.find((b) => b.delta.version === result.version)?.index ?? batch[0]!.index;",
      replace: "const at = batch[0]!.index;",
    },
  ],
});
