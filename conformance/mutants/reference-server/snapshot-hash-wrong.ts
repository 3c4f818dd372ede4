import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "snapshot-hash-wrong",
  area: "SNAP",
  description: "Snapshot hashes omit the head hash (hashing zeros in its place).",
  edits: [
    {
      file: "services/stream-service.ts",
      find:
        "      const hash = snapshotHash({\n" +
        "        streamUid: stream.uid,\n" +
        "        version,\n" +
        "        headHash,\n",
      replace:
        "      const hash = snapshotHash({\n" +
        "        streamUid: stream.uid,\n" +
        "        version,\n" +
        "        headHash: new Uint8Array(32),\n",
    },
  ],
});
