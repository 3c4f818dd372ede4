import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "revoke-grant-by-any-platform",
  area: "GRANT",
  caughtBy: ["grant.three-platforms-grants-do-not-chain"],
  description: "Any platform linked to the subject may revoke any grant, not only its grantor or grantee.",
  edits: [
    {
      file: "services/consent-service.ts",
      find: "      if (current.grantorPlatformId !== auth.platformId && current.granteePlatformId !== auth.platformId) {",
      replace: "      if (false) {",
    },
  ],
});
