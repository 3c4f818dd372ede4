import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-expiry-unchecked",
  area: "TOKEN",
  caughtBy: ["token.id-token-time-and-sub"],
  description: "An expired ID token is accepted (the clock tolerance of ID tokens is a year).",
  edits: [
    {
      file: "auth/id-tokens.ts",
      find: "        clockTolerance: CLOCK_SKEW_SECONDS,\n",
      replace: "        clockTolerance: 365 * 86_400,\n",
    },
  ],
});
