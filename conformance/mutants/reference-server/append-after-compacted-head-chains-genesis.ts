import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "append-after-compacted-head-chains-genesis",
  area: "COMPACT",
  caughtBy: ["compact.to-the-head-then-append"],
  description: "The previous hash of an append is that of the newest retained delta, or the genesis hash when none is retained: after compacting to the head, the chain restarts from genesis.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "  let prevHash = stream.headHash;\n",
      replace: "  let prevHash = stream.headVersion > stream.horizonVersion || stream.headVersion === 0 ? stream.headHash : stream.genesisHash;\n",
    },
  ],
});
