import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-stale-copy-forever",
  area: "TOKEN",
  caughtBy: ["oidc.jwks-last-good-copy-and-withdrawn-keys"],
  description: "The last good JWKS copy stands in for a provider that cannot be reached however old it is.",
  edits: [
    { file: "auth/id-tokens.ts", find: "  const usable = (): boolean => age() < timing.maxStale;", replace: "  const usable = (): boolean => local !== undefined;" },
  ],
});
