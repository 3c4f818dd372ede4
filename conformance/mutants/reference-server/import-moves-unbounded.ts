import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-moves-unbounded",
  area: "PORT",
  caughtBy: ["portability-edges.import-takes-records-as-written"],
  description: "Imported JSON Patch deltas may move any number of bytes to deeper places: the importer bounds copies and shifts but not these moves (PORT-049, LIMIT-023).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "  const bounds = jsonBounds(limits);\n",
      replace: "  const bounds = { ...jsonBounds(limits), maxDeeperMoveBytes: Infinity };\n",
    },
  ],
});
