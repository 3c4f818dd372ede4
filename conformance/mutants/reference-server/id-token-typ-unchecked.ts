import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "id-token-typ-unchecked",
  area: "TOKEN",
  caughtBy: ["token.id-token-signature"],
  description: "The typ header of ID tokens is not checked: the provider's access tokens (at+jwt) pass as ID tokens.",
  edits: [{ file: "auth/id-tokens.ts", find: "    if (!isPlainJwtType(header)) throw", replace: "    if (false) throw" }],
});
