import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "subject-token-type-ignored",
  area: "TOKEN",
  caughtBy: ["token.subject-token-type-mismatch"],
  description: "A subject token sent with the other platform kind's token type is verified anyway instead of refused as INVALID_FIELD.",
  edits: [
    {
      file: "auth/token-authority.ts",
      find: "      if ((platformById !== undefined && platformById.jwks === undefined) || oidcPlatforms.length > 0) {\n",
      replace: "      if (false) {\n",
    },
    { file: "auth/token-authority.ts", find: "    if (oidcPlatforms.length === 0 && platformById !== undefined) {\n", replace: "    if (false) {\n" },
  ],
});
