import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "expired-assertion-accepted",
  area: "TOKEN",
  caughtBy: ["token.assertion-verification"],
  description: "Expired platform assertions are exchanged: each is judged at its own issue time, so any exp after iat passes.",
  edits: [
    {
      file: "auth/token-authority.ts",
      find: '        requiredClaims: ["iss", "sub", "aud", "iat", "exp", "jti"],\n        currentDate: now(),\n',
      replace:
        '        requiredClaims: ["iss", "sub", "aud", "iat", "exp", "jti"],\n' +
        '        currentDate: typeof unverified.iat === "number" ? new Date(unverified.iat * 1000) : now(),\n',
    },
  ],
});
