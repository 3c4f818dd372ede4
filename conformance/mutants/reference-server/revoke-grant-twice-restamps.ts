import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "revoke-grant-twice-restamps",
  area: "GRANT",
  caughtBy: ["identity.three-platforms-share-devices-links-and-handoffs"],
  description: "Revoking a revoked grant stamps a new revoke_time and logs the revocation again.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: "        if (row.revoked_at !== null) return toGrant(row);\n",
      replace: "",
    },
  ],
});
