import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "compact-prev-hash-on-first-use",
  area: "SUB",
  caughtBy: ["subscription.compact-cursor-resumes-exactly"],
  description: "A compact batch at version 1 leaves prev_hash out on its stream's first use in the call, as if the client held the genesis hash (it delivered no delta of that stream yet).",
  edits: [
    {
      file: "services/compact-delivery.ts",
      find: "      const omitPrevHash = entry.lastHash !== undefined && Buffer.compare(entry.lastHash, batch.prevHash) === 0;\n",
      replace:
        "      const firstVersion = message.event.value.deltas[0]!.version;\n      const omitPrevHash = entry.lastHash === undefined ? firstVersion === 1n : Buffer.compare(entry.lastHash, batch.prevHash) === 0;\n",
    },
  ],
});
