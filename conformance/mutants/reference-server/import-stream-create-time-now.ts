import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-stream-create-time-now",
  area: "PORT",
  caughtBy: ["portability-edges.imported-records-keep-their-fields"],
  description: "An imported stream gets the time of the import as its create_time instead of its stream record's (PORT-020).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "      createdAt: wire.createTime ?? deps.clock(),\n",
      replace: "      createdAt: deps.clock(),\n",
    },
  ],
});
