import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "stall-cut-too-soon",
  area: "SUB",
  caughtBy: ["subscription.reading-reader-is-kept"],
  description: "A written message may wait only 3 s for the client before the call ends, below the 5 s SUB-034 gives every message, so a reader that pauses a few seconds is cut.",
  edits: [{ file: "services/deps.ts", find: "  stallTimeoutMs: 10_000,\n", replace: "  stallTimeoutMs: 3_000,\n" }],
});
