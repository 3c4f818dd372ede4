import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "grants-chain",
  area: "GRANT",
  caughtBy: ["grant.three-platforms-grants-do-not-chain"],
  description: "A grant covers every stream its grantee may read, so grants chain: a grantee's grantee reads the first grantor's streams.",
  edits: [
    {
      file: "services/access.ts",
      find: "    g.grantorPlatformId === stream.ownerPlatformId && (g.streamType",
      replace: "    (g.streamType",
    },
  ],
});
