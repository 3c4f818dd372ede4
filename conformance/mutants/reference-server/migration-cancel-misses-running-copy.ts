import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-cancel-misses-running-copy",
  area: "PORT",
  caughtBy: ["portability-switch.cancel-ends-the-copy"],
  description: "A target's cancel looks its running migration up by the wrong key, so the migration is only marked cancelled in the store and its copy goes on taking the source's bundle (PORT-056).",
  edits: [
    {
      file: "services/portability/migration.ts",
      find: "const entry = running.get(key(subjectId, id));",
      replace: "const entry = running.get(key(id, subjectId));",
    },
  ],
});
