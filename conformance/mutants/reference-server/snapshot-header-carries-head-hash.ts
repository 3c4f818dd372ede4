import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "snapshot-header-carries-head-hash",
  area: "SNAP",
  caughtBy: ["snapshot.headers-match-the-chain-at-every-version"],
  description: "A JSON snapshot at a middle version carries the stream's head hash as head_hash (and hashes with it), not the chain hash at its version.",
  // GetSnapshot, compaction, retention and restore all materialize through json-heads.ts.
  edits: [
    {
      file: "services/json-heads.ts",
      find: "    return { bytes: undefined, editor, headHash: base.deltas[base.deltas.length - 1]!.hash, atHead: version === base.stream.headVersion };",
      replace: "    return { bytes: undefined, editor, headHash: base.stream.headHash, atHead: version === base.stream.headVersion };",
    },
    {
      file: "services/json-heads.ts",
      find: "        version === base.stream.headVersion ? base.stream.headHash : await store.hashAtVersion(stream.subjectId, stream.id, version);",
      replace: "        base.stream.headHash;",
    },
  ],
});
