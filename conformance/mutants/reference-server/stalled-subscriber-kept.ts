import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "stalled-subscriber-kept",
  area: "SUB",
  caughtBy: ["subscription.stalled-reader-is-cut"],
  description: "A subscription whose client stopped reading stays open until it reads again (SUB-034).",
  edits: [
    {
      file: "services/subscription-stall.ts",
      find: "(method.path === SUBSCRIBE_PATH ? new StallGuard(call, stallMs) : call)",
      replace: "(false ? new StallGuard(call, stallMs) : call)",
    },
  ],
});
