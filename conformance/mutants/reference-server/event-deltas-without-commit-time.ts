import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "event-deltas-without-commit-time",
  area: "SUB",
  caughtBy: ["subscription.events-carry-every-field"],
  description: "Deltas in DeltasAppended events lack commit_time.",
  edits: [
    {
      file: "services/subscription-service.ts",
      find: "value: { deltas: body.deltas.map(wireDelta) } }",
      replace: "value: { deltas: body.deltas.map((d) => ({ ...wireDelta(d), commitTime: undefined })) } }",
    },
  ],
});
