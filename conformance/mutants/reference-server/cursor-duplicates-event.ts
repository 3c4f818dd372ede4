import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "cursor-duplicates-event",
  area: "SUB",
  caughtBy: ["subscription.resume-no-gap-no-duplicate"],
  description: "Resuming from a cursor re-sends the event the cursor names.",
  edits: [
    {
      file: "services/subscription-service.ts",
      find: "          position = requested.sequence;\n",
      replace: "          position = Math.max(0, requested.sequence - 1);\n",
    },
  ],
});
