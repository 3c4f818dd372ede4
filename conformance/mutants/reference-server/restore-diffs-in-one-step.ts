import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "restore-diffs-in-one-step",
  area: "LIMIT",
  caughtBy: ["limit.whole-state-work-answers-others"],
  should: ["LIMIT-022"],
  description: "RestoreCheckpoint diffs the whole head state against the checkpoint's and canonicalizes and hashes the delta in one step inside the append's transaction, from its first try, so restoring a large state holds up every other call (LIMIT-022).",
  edits: [
    {
      file: "services/checkpoint-service.ts",
      find: "if (attempt < SLICED_RESTORE_ATTEMPTS) {",
      replace: "if (attempt < 1) {",
    },
  ],
});
