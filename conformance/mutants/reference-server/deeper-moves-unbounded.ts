import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "deeper-moves-unbounded",
  area: "LIMIT",
  caughtBy: ["append.json-deeper-moves-bound"],
  description: "JSON Patch moves to deeper places carry any number of bytes, so a small patch that moves a large value down and back again walks all of it at every move (LIMIT-023).",
  edits: [
    {
      file: "services/materialize.ts",
      find: "    maxDeeperMoveBytes: limits.maxDeltaBytes,\n",
      replace: "",
    },
  ],
});
