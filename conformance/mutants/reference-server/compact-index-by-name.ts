import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "compact-index-by-name",
  area: "SUB",
  caughtBy: ["subscription.compact-rebuilds-the-full-form"],
  description: "Compact stream indexes are keyed by the stream's name alone, so a stream deleted and created again under the same id reuses the old stream's index (and its uid).",
  edits: [
    {
      file: "services/compact-delivery.ts",
      find: "const streamKey = (delta: Pick<Delta, \"stream\" | \"streamUid\">): string => `${delta.stream}\\n${delta.streamUid}`;",
      replace: "const streamKey = (delta: Pick<Delta, \"stream\" | \"streamUid\">): string => delta.stream;",
    },
  ],
});
