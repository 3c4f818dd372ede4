import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "assertion-typ-compared-exactly",
  area: "TOKEN",
  caughtBy: ["token.assertion-claims-at-their-edges"],
  description: "The assertion typ is compared as an exact string, not as a media type: application/continuity-assertion+jwt and upper case are refused.",
  edits: [
    {
      file: "auth/token-authority.ts",
      find: "      decodeProtectedHeader(assertion);\n",
      replace: "      if (decodeProtectedHeader(assertion).typ !== ASSERTION_TYP) throw new TypeError(\"typ must be continuity-assertion+jwt\");\n",
    },
  ],
});
