import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "identity-page-token-length-invalid-field",
  area: "DELTA",
  caughtBy: ["paging.damaged-identity-page-tokens-refused"],
  description: "The identity List requests bound page_token's length in their schema, so a long token the server never minted is refused as INVALID_FIELD instead of INVALID_PAGE_TOKEN.",
  edits: [{ file: "services/paging.ts", find: "  pageToken: z.string(),\n});", replace: "  pageToken: z.string().max(1024),\n});" }],
});
