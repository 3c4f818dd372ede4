import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "compact-cursor-stale-suffix",
  area: "SUB",
  caughtBy: ["subscription.compact-cursor-resumes-exactly"],
  description: "In a compact call, a message that is not a batch carries the cursor suffix of the last batch before it, so resuming from its rebuilt cursor delivers it again.",
  edits: [
    {
      file: "services/compact-delivery.ts",
      find: "  const withSuffix = (message: Message, suffix: Buffer | undefined): Message =>\n    suffix === undefined ? message : { ...message, cursor: \"\", cursorSuffix: suffix };\n",
      replace:
        "  let lastSuffix: Buffer | undefined;\n  const withSuffix = (message: Message, fresh: Buffer | undefined): Message => {\n    const suffix = lastSuffix ?? fresh;\n    return suffix === undefined ? message : { ...message, cursor: \"\", cursorSuffix: suffix };\n  };\n",
    },
    {
      file: "services/compact-delivery.ts",
      find: "      if (batch === null) return full(message, batch);\n      let entry",
      replace: "      if (batch === null) return full(message, batch);\n      lastSuffix = batch.suffix ?? lastSuffix;\n      let entry",
    },
  ],
});
