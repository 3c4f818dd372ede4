import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "assertion-no-clock-skew",
  area: "TOKEN",
  caughtBy: ["token.assertion-claims-at-their-edges"],
  description: "No clock skew is tolerated on assertions: an exp a few seconds past, or an iat a few seconds ahead, is refused.",
  edits: [
    {
      file: "auth/token-authority.ts",
      find: "        clockTolerance: CLOCK_SKEW_SECONDS,",
      replace: "        clockTolerance: 0,",
    },
  ],
});
