import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-shifts-unbounded",
  area: "PORT",
  caughtBy: ["portability-edges.import-takes-records-as-written"],
  description: "Imported JSON Patch deltas may shift any number of array items: the importer bounds copies and moves but not shifts (PORT-049, LIMIT-024).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "  const bounds = jsonBounds(limits);\n",
      replace: "  const bounds = { ...jsonBounds(limits), maxShiftedItems: Infinity };\n",
    },
  ],
});
