import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "grants-default-page-is-max",
  area: "DELTA",
  caughtBy: ["paging.identity-lists-defaults-caps-and-tokens"],
  description: "ListGrants with page_size 0 returns a page of max_page_size, not the default of 50.",
  edits: [
    {
      file: "services/consent-service.ts",
      find: "        limit: pageSize(valid.pageSize, IDENTITY_DEFAULT_PAGE_SIZE, deps.limits.maxPageSize),",
      replace: "        limit: pageSize(valid.pageSize, deps.limits.maxPageSize, deps.limits.maxPageSize),",
    },
  ],
});
