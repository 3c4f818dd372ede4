import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "compact-batch-drops-client-sequence",
  area: "SUB",
  caughtBy: ["subscription.compact-rebuilds-the-full-form"],
  description: "A compact batch leaves client_sequence at 0, so the rebuilt deltas differ from the full form's.",
  edits: [
    {
      file: "services/compact-delivery.ts",
      find: "        clientSequence: head.clientSequence,\n",
      replace: "        clientSequence: 0n,\n",
    },
  ],
});
