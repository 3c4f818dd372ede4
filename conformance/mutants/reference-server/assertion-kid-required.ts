import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "assertion-kid-required",
  area: "TOKEN",
  caughtBy: ["token.assertion-claims-at-their-edges"],
  description: "Assertions without a kid header are refused: the key is looked up by kid only.",
  edits: [
    {
      file: "auth/token-authority.ts",
      find: "      decodeProtectedHeader(assertion);\n",
      replace: "      if (decodeProtectedHeader(assertion).kid === undefined) throw new TypeError(\"kid is required\");\n",
    },
  ],
});
