import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "grant-revocation-ignored",
  area: "GRANT",
  caughtBy: ["auth.revocation-after-remembered-use"],
  description: "Revoked grants still give access, and open subscriptions are not told.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: 'stmt("SELECT * FROM grants WHERE subject_id = ? AND revoked_at IS NULL ORDER BY ord")',
      replace: 'stmt("SELECT * FROM grants WHERE subject_id = ? ORDER BY ord")',
    },
    {
      file: "services/subscription-service.ts",
      find: "      if (body.grant.granteePlatformId !== context.auth.platformId) return SKIP;\n",
      replace: "      if (body.grant.granteePlatformId !== context.auth.platformId || true) return SKIP;\n",
    },
  ],
});
