import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-lost-answer-fails",
  area: "PORT",
  caughtBy: ["portability-switch.lost-commit-messages"],
  description: "A target whose commit's answer is lost takes the migration as failed without asking the source, which has moved the subject and redirects its devices there (PORT-052, PORT-034).",
  edits: [
    {
      file: "services/portability/migration.ts",
      find: "    for await (const _part of source.exportSubject({ name: sourceSubject, after: [] }, probe.signal)) break;\n    return false;\n",
      replace: "    return false;\n",
    },
  ],
});
