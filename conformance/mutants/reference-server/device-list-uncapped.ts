import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "device-list-uncapped",
  area: "DELTA",
  caughtBy: ["paging.identity-lists-defaults-caps-and-tokens"],
  description: "ListDevices honours any page_size, above max_page_size too.",
  edits: [
    {
      file: "services/device-service.ts",
      find: "        limit: pageSize(valid.pageSize, IDENTITY_DEFAULT_PAGE_SIZE, deps.limits.maxPageSize),",
      replace: "        limit: valid.pageSize === 0 ? IDENTITY_DEFAULT_PAGE_SIZE : valid.pageSize,",
    },
  ],
});
