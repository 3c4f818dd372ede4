import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "bundle-keys-unpublished",
  area: "PORT",
  caughtBy: ["portability.export-is-complete-and-verifiable"],
  description: "ServerInfo publishes no key to verify the server's bundle signatures with.",
  edits: [{ file: "services/server-info-service.ts", find: "        bundleSigningJwks: JSON.stringify({ keys: [deps.tokens.publicJwk] }),\n", replace: '        bundleSigningJwks: "",\n' }],
});
