import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "delta-limit-counts-characters",
  area: "APPEND",
  caughtBy: ["limit.utf8-bytes-at-exact-boundaries"],
  description: "max_delta_bytes is compared with the payload's length in characters once decoded as UTF-8, not with its bytes.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "      if (payload.length > limits.maxDeltaBytes) {",
      replace: "      if (new TextDecoder().decode(payload).length > limits.maxDeltaBytes) {",
    },
  ],
});
