import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "account-link-name-any-collection",
  area: "GEN",
  caughtBy: ["names.identity-names-refused"],
  description: "Minted-id names (account links, grants) are parsed by position without checking the collection segment, so subjects/{s}/grants/{id} is taken as an account link and the reverse.",
  edits: [{ file: "auth/resource-names.ts", find: " || parts[2] !== collection || ", replace: " || " }],
});
