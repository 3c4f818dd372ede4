import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "assertion-aud-substring",
  area: "TOKEN",
  caughtBy: ["token.assertion-claims-at-their-edges"],
  description: "An assertion's aud is accepted when its text contains the server's audience (continuity-staging passes for continuity).",
  edits: [
    {
      file: "auth/token-authority.ts",
      find: "        audience,\n        clockTolerance: CLOCK_SKEW_SECONDS,",
      replace: "        clockTolerance: CLOCK_SKEW_SECONDS,",
    },
    {
      file: "auth/token-authority.ts",
      find: "    const { sub, jti, iat, exp } = payload;\n",
      replace: "    const { sub, jti, iat, exp } = payload;\n    if (!String(payload.aud).includes(audience)) throw new AuthFailure(\"ASSERTION_INVALID\", \"aud does not contain the audience\");\n",
    },
  ],
});
