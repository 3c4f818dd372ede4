import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-cancel-any-run",
  area: "PORT",
  caughtBy: ["portability.migration-conflict-and-cancel"],
  description: "CancelMigration stops whichever migration this server started last, not the one it names (PORT-037).",
  edits: [
    {
      file: "services/portability/migration.ts",
      find: "const key = (subjectId: string, id: string): string => `${subjectId}/${id}`;",
      replace: 'const key = (_subjectId: string, _id: string): string => "run";',
    },
  ],
});
