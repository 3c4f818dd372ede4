import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-completes-unconfirmed",
  area: "PORT",
  caughtBy: ["portability-switch.lost-commit-messages"],
  description: "A target whose switch ends without the source's committed answer reports the migration completed, though the source never recorded the move and still serves the subject (PORT-052).",
  edits: [
    {
      file: "services/portability/migration.ts",
      find: '      if (!committed) throw new Error("the source ended the switch without confirming it");\n',
      replace: "",
    },
  ],
});
