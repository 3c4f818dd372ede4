import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "expired-sequence-answered-reused",
  area: "APPEND",
  caughtBy: ["append.outcome-retention"],
  description: "An acknowledged client sequence older than the kept outcome is answered CLIENT_SEQUENCE_REUSED, as if its outcome were known, instead of CLIENT_SEQUENCE_EXPIRED.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: '        return { kind: "sequence-expired", clientSequence: input.clientSequence, expectedSequence: last + 1 };\n',
      replace: '        return { kind: "sequence-reused", clientSequence: input.clientSequence, expectedSequence: last + 1 };\n',
    },
  ],
});
