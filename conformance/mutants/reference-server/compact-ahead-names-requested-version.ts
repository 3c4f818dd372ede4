import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "compact-ahead-names-requested-version",
  area: "COMPACT",
  caughtBy: ["errors.metadata-carries-the-exact-values"],
  description: "CompactStream above the head reports the requested version as headVersion.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "      if (req.horizonVersion > stream.headVersion) throw aheadOfHead(stream.headVersion);",
      replace: "      if (req.horizonVersion > stream.headVersion) throw aheadOfHead(req.horizonVersion);",
    },
  ],
});
