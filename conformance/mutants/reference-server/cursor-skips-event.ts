import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "cursor-skips-event",
  area: "SUB",
  caughtBy: ["subscription.resume-no-gap-no-duplicate"],
  description: "Resuming from a cursor skips the first event after it.",
  edits: [
    { file: "services/subscription-service.ts", find: "          position = requested.sequence;\n", replace: "          position = requested.sequence + 1;\n" },
  ],
});
