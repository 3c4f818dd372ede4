import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-withdrawn-key-kept",
  area: "TOKEN",
  caughtBy: ["oidc.jwks-last-good-copy-and-withdrawn-keys"],
  description: "A key the provider no longer lists keeps verifying after a successful fetch: the old copy stays behind the new one.",
  edits: [
    { file: "auth/id-tokens.ts", find: "      local = { fetchedAt: at, getKey };\n", replace: "      const previous = local;\n      local = { fetchedAt: at, getKey: previous === undefined ? getKey : async (h, t) => getKey(h, t).catch(() => previous.getKey(h, t)) };\n" },
  ],
});
