import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-provider-down-unauthenticated",
  area: "TOKEN",
  caughtBy: ["oidc.jwks-size-and-key-count-capped"],
  description: "A JWKS that cannot be fetched is answered as a bad credential (UNAUTHENTICATED / ASSERTION_INVALID).",
  edits: [{ file: "auth/id-tokens.ts", find: "      if (isKeySetFailure(error)) throw", replace: "      if (false) throw" }],
});
