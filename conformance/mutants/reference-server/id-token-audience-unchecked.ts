import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-audience-unchecked",
  area: "TOKEN",
  caughtBy: ["token.id-token-audience"],
  description: "An ID token's aud and azp are not checked: a token the provider issued to another app is accepted.",
  edits: [
    {
      file: "auth/id-tokens.ts",
      find: "  return candidates.find((platform) => audiences.includes(platform.oidc?.clientId ?? \"\"));\n",
      replace: "  return candidates[0];\n",
    },
    { file: "auth/id-tokens.ts", find: "  if (typeof azp === \"string\") return candidates.find", replace: "  if (false) return candidates.find" },
    { file: "auth/id-tokens.ts", find: "        audience: oidc.clientId,\n", replace: "" },
    { file: "auth/id-tokens.ts", find: "    if (azp !== undefined && azp !== oidc.clientId) throw", replace: "    if (false) throw" },
    { file: "auth/id-tokens.ts", find: "    if (Array.isArray(aud) && aud.length > 1 && azp === undefined) {", replace: "    if (false) {" },
  ],
});
