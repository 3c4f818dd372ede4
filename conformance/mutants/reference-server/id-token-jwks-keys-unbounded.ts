import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-jwks-keys-unbounded",
  area: "TOKEN",
  caughtBy: ["oidc.jwks-size-and-key-count-capped"],
  description: "A JWKS of any number of keys is taken.",
  edits: [
    { file: "auth/provider-documents.ts", find: "  if (Array.isArray(keys) && keys.length > JWKS_MAX_KEYS) {", replace: "  if (false) {" },
  ],
});
