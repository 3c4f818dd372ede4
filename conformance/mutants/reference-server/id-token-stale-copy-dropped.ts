import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-stale-copy-dropped",
  area: "TOKEN",
  caughtBy: ["oidc.jwks-last-good-copy-and-withdrawn-keys"],
  description: "A failed refresh of a JWKS copy past its refresh age answers UNAVAILABLE instead of verifying with the last good copy.",
  edits: [
    { file: "auth/id-tokens.ts", find: "        if (!isKeySetFailure(error) || !usable()) throw error;", replace: "        throw error;" },
  ],
});
