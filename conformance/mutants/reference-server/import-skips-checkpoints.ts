import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-skips-checkpoints",
  area: "PORT",
  caughtBy: ["portability.import-resumes-after-interruption"],
  description: "ImportBundle verifies checkpoint records but never stores them: the imported subject has no place to resume from.",
  edits: [
    {
      file: "services/portability/import.ts",
      find: '        const resume = c.resume ?? { activityType: "", resource: "", position: "", fallbackUrl: "", attributes: {} };\n',
      replace: '        const resume = c.resume ?? { activityType: "", resource: "", position: "", fallbackUrl: "", attributes: {} };\n        if (resume !== undefined) return tally("skipped");\n',
    },
  ],
});
