import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "checkpoint-bad-page-token-restarts",
  area: "DELTA",
  caughtBy: ["paging.damaged-page-tokens-refused"],
  description: "ListCheckpoints answers a page token it cannot verify by starting the listing over.",
  edits: [
    {
      file: "services/checkpoint-service.ts",
      find: "      let after = deps.pageTokens.decode(key, req.pageToken);",
      replace: "      let after: string | undefined;\n      try {\n        after = deps.pageTokens.decode(key, req.pageToken);\n      } catch {\n        after = undefined;\n      }",
    },
  ],
});
