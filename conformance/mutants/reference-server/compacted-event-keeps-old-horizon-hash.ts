import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "compacted-event-keeps-old-horizon-hash",
  area: "COMPACT",
  caughtBy: ["subscription.events-carry-every-field"],
  description: "StreamCompacted carries the new horizon_version with the old horizon_hash.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: "logEvent(sink, input.subjectId, { kind: \"stream-compacted\", stream }, input.now);",
      replace: "logEvent(sink, input.subjectId, { kind: \"stream-compacted\", stream: { ...stream, horizonHash: row.horizon_hash } }, input.now);",
    },
  ],
});
