import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "stall-timer-cuts-idle-reader",
  area: "SUB",
  caughtBy: ["subscription.reading-reader-is-kept"],
  description: "The stall timer judges the wait even when no written message waits, so a reader that took everything is cut once the feed stays quiet for the period (SUB-034).",
  edits: [{ file: "services/subscription-stall.ts", find: "    if (this.ended || this.waiting.length === 0) return;\n", replace: "    if (false) return;\n" }],
});
