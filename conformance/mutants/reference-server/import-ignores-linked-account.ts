import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-ignores-linked-account",
  area: "PORT",
  caughtBy: ["portability.import-round-trip-and-idempotent"],
  description: "Importing an account link already linked to another subject is skipped silently instead of failing.",
  edits: [
    {
      file: "services/portability/import.ts",
      find: '      if (result === "linked-elsewhere") throw ',
      replace: '      if (result === "linked-elsewhere") {\n        tally("skipped");\n        continue;\n      }\n      if (false) throw ',
    },
  ],
});
