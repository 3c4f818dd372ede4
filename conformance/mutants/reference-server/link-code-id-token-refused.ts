import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "link-code-id-token-refused",
  area: "LINK",
  caughtBy: ["link.redeem-with-id-token"],
  description: "RedeemLinkCode verifies every subject token as an assertion, so a platform known by its OpenID provider can never join a subject.",
  edits: [
    {
      file: "auth/token-authority.ts",
      find: '    if (kind === "by-issuer") return oidcPlatforms.length > 0 ? idTokens.verify(token) : verifyAssertion(token);\n',
      replace: '    if (kind === "by-issuer") return verifyAssertion(token);\n',
    },
  ],
});
