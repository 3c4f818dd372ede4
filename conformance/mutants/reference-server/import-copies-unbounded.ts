import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-copies-unbounded",
  area: "PORT",
  caughtBy: ["portability-edges.import-takes-records-as-written"],
  description: "Imported JSON Patch deltas may copy any number of bytes: the importer bounds only the state, not the copies (PORT-049, LIMIT-021).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "  const bounds = jsonBounds(limits);\n",
      replace: "  const bounds = { maxStateBytes: limits.maxSnapshotBytes };\n",
    },
  ],
});
