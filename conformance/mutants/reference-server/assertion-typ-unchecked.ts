import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "assertion-typ-unchecked",
  area: "TOKEN",
  caughtBy: ["token.assertion-verification"],
  description: "Assertions without typ continuity-assertion+jwt are accepted.",
  edits: [{ file: "auth/token-authority.ts", find: "        typ: ASSERTION_TYP,\n", replace: "" }],
});
