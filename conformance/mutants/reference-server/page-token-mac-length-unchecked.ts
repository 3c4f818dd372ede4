import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "page-token-mac-length-unchecked",
  area: "DELTA",
  caughtBy: ["paging.damaged-page-tokens-refused"],
  description: "A page token's MAC is compared with timingSafeEqual without checking its length first, so a shortened or padded token ends the call INTERNAL instead of INVALID_PAGE_TOKEN.",
  edits: [{ file: "services/paging.ts", find: "      return tag.length === expected.length && timingSafeEqual(tag, expected);", replace: "      return timingSafeEqual(tag, expected);" }],
});
