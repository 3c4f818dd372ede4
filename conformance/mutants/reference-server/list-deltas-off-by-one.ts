import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "list-deltas-off-by-one",
  area: "DELTA",
  caughtBy: ["delta.list-after-version-and-bounds"],
  description: "ListDeltas includes the delta at after_version.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "      const limit = pageSize(req.pageSize, DEFAULT_DELTA_PAGE, limits.maxPageSize);\n",
      replace:
        "      if (token === undefined && after > 0) after -= 1;\n" +
        "      const limit = pageSize(req.pageSize, DEFAULT_DELTA_PAGE, limits.maxPageSize);\n",
    },
  ],
});
