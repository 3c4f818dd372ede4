import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "event-deltas-without-payloads",
  area: "SUB",
  caughtBy: ["subscription.events-carry-every-field"],
  description: "DeltasAppended events carry the deltas' versions and hashes but not their payloads, as a notification to fetch them.",
  edits: [
    {
      file: "services/subscription-service.ts",
      find: "value: { deltas: body.deltas.map(wireDelta) } }",
      replace: "value: { deltas: body.deltas.map((d) => ({ ...wireDelta(d), payload: new Uint8Array(0) })) } }",
    },
  ],
});
