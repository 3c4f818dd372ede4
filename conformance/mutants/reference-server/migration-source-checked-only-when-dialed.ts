import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-source-checked-only-when-dialed",
  area: "PORT",
  caughtBy: ["portability.migration-source-must-be-allowed"],
  description: "CreateMigration accepts any source address and only the run refuses to dial a forbidden one, so the caller learns of it from a failed migration instead of an INVALID_FIELD.",
  edits: [
    {
      file: "services/portability-service.ts",
      find: '      if (checked.kind === "refused") throw invalidField("source", checked.message);\n',
      replace: "",
    },
  ],
});
