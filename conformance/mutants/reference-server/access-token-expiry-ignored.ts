import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "access-token-expiry-ignored",
  area: "AUTH",
  caughtBy: ["auth.token-expiry"],
  description: "Access tokens are accepted for a day past their expires_in.",
  edits: [
    {
      file: "auth/token-authority.ts",
      find: "        clockTolerance: 0,\n        requiredClaims: [\"sub\", \"jti\", \"iat\", \"exp\"],",
      replace: "        clockTolerance: 86400,\n        requiredClaims: [\"sub\", \"jti\", \"iat\", \"exp\"],",
    },
  ],
});
