import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-rotation-ignored",
  area: "TOKEN",
  caughtBy: ["oidc.jwks-last-good-copy-and-withdrawn-keys"],
  description: "An unknown kid never makes the server fetch the JWKS again, so a provider's new key is refused until the cache expires.",
  edits: [{ file: "auth/id-tokens.ts", find: "    cooldownDuration: platform.oidc.jwksCooldownMs,\n", replace: "    cooldownDuration: Infinity,\n" }],
});
