import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "snapshot-header-carries-head-hash",
  area: "SNAP",
  description: "A JSON snapshot at a middle version carries the stream's head hash as head_hash (and hashes with it), not the chain hash at its version.",
  // GetSnapshot serves JSON states through materializeJsonBytes; checkpoints and compaction
  // through materializeJson. The bug is in both.
  edits: [
    {
      file: "services/materialize.ts",
      find: "  const headHash = lastDelta !== undefined ? lastDelta.hash : await store.hashAtVersion(stream.subjectId, stream.id, version);",
      replace: "  void lastDelta;\n  const headHash = stream.headHash;",
    },
    {
      file: "services/materialize.ts",
      find: "  if (lastDelta !== undefined) return { bytes: canonicalJson(applyStateBase(base)), headHash: lastDelta.hash };",
      replace: "  if (lastDelta !== undefined) return { bytes: canonicalJson(applyStateBase(base)), headHash: base.stream.headHash };",
    },
    {
      file: "services/materialize.ts",
      find: "  const headHash = base.stream.headVersion === version ? base.stream.headHash : await store.hashAtVersion(stream.subjectId, stream.id, version);",
      replace: "  const headHash = base.stream.headHash;",
    },
  ],
});
