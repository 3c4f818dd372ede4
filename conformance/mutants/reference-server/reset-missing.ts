import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "reset-missing",
  area: "SUB",
  caughtBy: ["subscription.other-epoch-cursor-resets"],
  description: "A cursor of another epoch is resumed as if current instead of answering reset.",
  edits: [{ file: "services/subscription-service.ts", find: "        } else if (requested.epoch !== epoch) {\n", replace: "        } else if (false) {\n" }],
});
