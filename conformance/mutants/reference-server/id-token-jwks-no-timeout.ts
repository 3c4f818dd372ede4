import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-jwks-no-timeout",
  area: "TOKEN",
  caughtBy: ["token.id-token-provider-unavailable"],
  description: "A JWKS fetch waits an hour for a provider that does not answer, and the exchange with it.",
  edits: [{ file: "auth/id-tokens.ts", find: "    timeoutDuration: platform.oidc.jwksTimeoutMs,\n", replace: "    timeoutDuration: 3_600_000,\n" }],
});
