import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "compact-prev-hash-once-indexed",
  area: "SUB",
  caughtBy: ["subscription.compact-prev-hash-where-the-chain-restarts"],
  description: "A compact batch leaves prev_hash out whenever the call delivered its stream before, even when the batch's first delta does not follow the last one delivered.",
  edits: [
    {
      file: "services/compact-delivery.ts",
      find: "      const omitPrevHash = entry.lastHash !== undefined && Buffer.compare(entry.lastHash, batch.prevHash) === 0;\n",
      replace: "      const omitPrevHash = entry.lastHash !== undefined;\n",
    },
  ],
});
