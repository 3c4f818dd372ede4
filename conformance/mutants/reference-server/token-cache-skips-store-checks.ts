import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "token-cache-skips-store-checks",
  area: "AUTH",
  caughtBy: ["device.revocation-ends-tokens-and-subscriptions"],
  description: "A token the authority already verified is accepted without re-checking its device, link and subject against the store.",
  edits: [
    {
      file: "auth/token-authority.ts",
      find: "      return hit.context;\n",
      replace: "      return { ...hit.context, remembered: true } as AuthContext;\n",
    },
    {
      file: "auth/middleware.ts",
      find: "  const platform = deps.tokens.platforms.get(claims.platformId);\n",
      replace: "  const platform = deps.tokens.platforms.get(claims.platformId);\n  if ((claims as { remembered?: boolean }).remembered === true && platform !== undefined) return { ...claims, scopes: claims.scopes };\n",
    },
  ],
});
