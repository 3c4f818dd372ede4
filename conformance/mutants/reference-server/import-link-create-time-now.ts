import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-link-create-time-now",
  area: "PORT",
  caughtBy: ["portability-edges.imported-records-keep-their-fields"],
  description: "An imported account link gets the time of the import as its create_time instead of its record's (PORT-047).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "createdAt: link.createTime ?? deps.clock() });",
      replace: "createdAt: deps.clock() });",
    },
  ],
});
