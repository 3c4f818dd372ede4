import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-issuer-unchecked",
  area: "TOKEN",
  caughtBy: ["token.id-token-issuer"],
  description: "An ID token is matched to a platform by its audience alone: any iss signed by the provider's keys is accepted.",
  edits: [
    {
      file: "auth/id-tokens.ts",
      find: "    const candidates = byIssuer.get(issuer) ?? [];\n",
      replace: "    const candidates = [...byIssuer.values()].flat();\n",
    },
    { file: "auth/id-tokens.ts", find: "        issuer: oidc.issuer,\n", replace: "" },
  ],
});
