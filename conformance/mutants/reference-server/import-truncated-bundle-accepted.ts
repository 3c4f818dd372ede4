import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-truncated-bundle-accepted",
  area: "PORT",
  caughtBy: ["portability-edges.import-takes-records-as-written"],
  description: "ImportBundle reports a bundle whose requests end before its trailer as imported (PORT-050).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "  let done = false;\n",
      replace: "  let done = true;\n",
    },
  ],
});
