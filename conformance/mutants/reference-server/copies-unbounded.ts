import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "copies-unbounded",
  area: "LIMIT",
  caughtBy: ["append.json-copies-bound"],
  description: "JSON Patch copies of an append or import insert any number of bytes, so a small patch can double the state again and again (LIMIT-021).",
  edits: [
    {
      file: "services/materialize.ts",
      find: "    maxCopyBytes: limits.maxDeltaBytes,\n",
      replace: "",
    },
  ],
});
