import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "list-grants-whole-subject",
  area: "GRANT",
  caughtBy: ["grant.three-platforms-grants-do-not-chain"],
  description: "ListGrants returns every active grant of the subject, also those the caller's platform neither made nor holds.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: "\"SELECT * FROM grants WHERE subject_id = ? AND revoked_at IS NULL AND (grantor_platform = ? OR grantee_platform = ?) AND ord > ? ORDER BY ord LIMIT ?\",\n      ).all(subjectId, platformId, platformId, ordAfter(page), page.limit + 1)",
      replace: "\"SELECT * FROM grants WHERE subject_id = ? AND revoked_at IS NULL AND ord > ? ORDER BY ord LIMIT ?\",\n      ).all(subjectId, ordAfter(page), page.limit + 1)",
    },
  ],
});
