import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-checkpoint-device-unchecked",
  area: "PORT",
  caughtBy: ["portability-edges.import-refuses-malformed-records"],
  description: "ImportBundle stores a checkpoint record whose device is not a device name, without its device, instead of refusing it (PORT-029).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "        if (c.device !== \"\" && device === undefined) throw invalidField(recordField(part.index, \"checkpoint.device\"), \"must be subjects/{subject}/devices/{device} or empty\");\n",
      replace: "",
    },
  ],
});
