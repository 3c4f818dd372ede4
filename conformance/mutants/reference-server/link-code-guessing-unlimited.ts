import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "link-code-guessing-unlimited",
  area: "LINK",
  caughtBy: ["link.failed-redemptions-limited"],
  description: "Failed link-code redemptions are never counted, so guessing is not limited.",
  edits: [
    {
      file: "services/subject-service.ts",
      find: '      if (result.kind !== "linked") await attempts.recordFailure(platformId, assertion.accountId, now);\n',
      replace: "",
    },
  ],
});
