import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "compact-variant-shared-by-calls",
  area: "SUB",
  caughtBy: ["subscription.compact-indexes-belong-to-their-call"],
  description: "The first compact rendering of a batch is sent to every compact subscription the batch goes to, whatever index, definition or left-out prev_hash each of them needs.",
  edits: [
    {
      file: "services/compact-delivery.ts",
      find: "      const key = `${entry.index}.${defineStream ? 1 : 0}.${deviceIndex}.${defineDevice ? 1 : 0}.${omitPrevHash ? 1 : 0}`;\n",
      replace: "      const key = ``;\n",
    },
  ],
});
