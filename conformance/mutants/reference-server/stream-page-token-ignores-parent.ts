import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "stream-page-token-ignores-parent",
  area: "DELTA",
  caughtBy: ["paging.core-lists-defaults-caps-and-tokens"],
  description: "ListStreams page tokens are bound to the method, platform and filter but not the parent, so one subject's token pages another's streams.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "      const key = [\"ListStreams\", req.parent, auth.platformId, req.type];",
      replace: "      const key = [\"ListStreams\", auth.platformId, req.type];",
    },
  ],
});
