import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "page-token-trailing-parts-accepted",
  area: "DELTA",
  caughtBy: ["paging.damaged-page-tokens-refused"],
  description: "A page token is split on dots and only its first two parts are read, so a minted token with a piece appended is accepted.",
  edits: [{ file: "services/paging.ts", find: "      if (parts.length !== 2) throw invalidPageToken();", replace: "      if (parts.length < 2) throw invalidPageToken();" }],
});
