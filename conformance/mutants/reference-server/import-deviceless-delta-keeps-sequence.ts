import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-deviceless-delta-keeps-sequence",
  area: "PORT",
  caughtBy: ["portability-edges.import-takes-records-as-written"],
  description: "A delta record without a device is imported with its record's client sequence instead of 0 (PORT-047).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "        clientSequence: deviceId === undefined ? 0 : Number(d.clientSequence),\n",
      replace: "        clientSequence: Number(d.clientSequence),\n",
    },
  ],
});
