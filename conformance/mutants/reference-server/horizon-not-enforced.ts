import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "horizon-not-enforced",
  area: "COMPACT",
  caughtBy: ["compact.horizon-enforced-and-verifiable"],
  description: "ListDeltas below the horizon answers a partial list instead of HISTORY_COMPACTED.",
  edits: [
    {
      file: "services/stream-service.ts",
      find:
        "      if (req.afterVersion < stream.horizonVersion) {\n" +
        "        throw historyCompacted(",
      replace:
        "      if (false) {\n" +
        "        throw historyCompacted(",
    },
  ],
});
