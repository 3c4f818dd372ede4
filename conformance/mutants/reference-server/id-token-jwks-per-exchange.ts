import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-jwks-per-exchange",
  area: "TOKEN",
  caughtBy: ["token.id-token-jwks-cache-and-rotation"],
  description: "A platform's JWKS is never cached: every ID token fetches it from the provider again.",
  edits: [{ file: "auth/id-tokens.ts", find: "    cacheMaxAge: platform.oidc.jwksRefreshMs,\n", replace: "    cacheMaxAge: 0,\n" }],
});
