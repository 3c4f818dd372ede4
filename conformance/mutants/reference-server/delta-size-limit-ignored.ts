import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "delta-size-limit-ignored",
  area: "LIMIT",
  caughtBy: ["limit.utf8-bytes-at-exact-boundaries"],
  description: "Deltas above max_delta_bytes are accepted.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "      if (payload.length > limits.maxDeltaBytes) {\n",
      replace: "      if (false) {\n",
    },
  ],
});
