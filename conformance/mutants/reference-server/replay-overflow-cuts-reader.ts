import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "replay-overflow-cuts-reader",
  area: "SUB",
  caughtBy: ["subscription.prompt-reader-survives-long-catch-up"],
  description:
    "A subscription still replaying its backlog is cut as too slow once the events committed during the replay overflow its live buffer, though the log holds them all and the reader keeps reading (SUB-033).",
  edits: [
    {
      file: "services/subscription-service.ts",
      find: "            if (buffer?.overflowed === true) buffer = undefined;\n",
      replace: "            if (buffer?.overflowed === true) throw tooSlow();\n",
    },
  ],
});
