import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "assertion-lifetime-from-now",
  area: "TOKEN",
  caughtBy: ["token.assertion-claims-at-their-edges"],
  description: "An assertion's 300 s lifetime is measured from when the server receives it (exp - now), not from iat.",
  edits: [
    {
      file: "auth/token-authority.ts",
      find: "exp - iat > MAX_ASSERTION_LIFETIME_SECONDS",
      replace: "exp - epochSeconds(now()) > MAX_ASSERTION_LIFETIME_SECONDS",
    },
  ],
});
