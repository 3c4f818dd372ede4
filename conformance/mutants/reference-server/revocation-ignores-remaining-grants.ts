import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "revocation-ignores-remaining-grants",
  area: "SUB",
  caughtBy: ["grant.revoking-one-of-two-grants-keeps-the-other"],
  description: "Revoking a grant ends the grantee's subscriptions and lists its streams as lost even when another grant still makes them readable.",
  edits: [
    {
      file: "services/subscription-service.ts",
      find: "  const lost = covered.items.filter((s) => !now.canRead(s)).map(",
      replace: "  void now;\n  const lost = covered.items.map(",
    },
  ],
});
