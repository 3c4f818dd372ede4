import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-revives-revoked-grants",
  area: "PORT",
  caughtBy: ["portability.import-resumes-after-interruption"],
  description: "ImportBundle stores grant records without their revoke time: a consent the person withdrew is active again on the new server.",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "access, createdAt: g.createTime ?? now, revokedAt: g.revokeTime }",
      replace: "access, createdAt: g.createTime ?? now, revokedAt: undefined }",
    },
  ],
});
