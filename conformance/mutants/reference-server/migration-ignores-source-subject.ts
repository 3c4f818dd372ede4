import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-ignores-source-subject",
  area: "PORT",
  caughtBy: ["portability-edges.export-and-migration-requests-checked"],
  description: "A migration copies the source token's own subject whatever source_subject names (PORT-035).",
  edits: [
    {
      file: "services/portability/migration.ts",
      find: 'const sourceName = (): string => (migration.sourceSubject === "" ? "subjects/-" : migration.sourceSubject);',
      replace: 'const sourceName = (): string => "subjects/-";',
    },
  ],
});
