import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "stall-timer-ignores-progress",
  area: "SUB",
  caughtBy: ["subscription.reading-reader-is-kept"],
  description: "A message still waiting when the stall timer fires ends the call however short its wait, so a reader that takes a message every few seconds is cut (SUB-034).",
  edits: [{ file: "services/subscription-stall.ts", find: "    if (left > 0) {\n", replace: "    if (false) {\n" }],
});
