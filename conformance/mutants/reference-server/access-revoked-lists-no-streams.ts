import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "access-revoked-lists-no-streams",
  area: "SUB",
  caughtBy: ["subscription.revocations-of-others-leave-the-feed-open"],
  description: "AccessRevoked names the grant but leaves its stream list empty.",
  edits: [
    {
      file: "services/subscription-service.ts",
      find: "value: { grant: grantName(subjectId, grant.id), streams: lost } }",
      replace: "value: { grant: grantName(subjectId, grant.id), streams: [] } }",
    },
  ],
});
