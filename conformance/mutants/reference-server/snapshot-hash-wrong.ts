import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "snapshot-hash-wrong",
  area: "SNAP",
  caughtBy: ["snapshot.merge-patch-states-match"],
  description: "Snapshot hashes omit the head hash (hashing zeros in its place).",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "    const hash = await snapshotHashSliced({ streamUid: stream.uid, version, headHash, encoding: stream.encoding, state });\n",
      replace: "    const hash = await snapshotHashSliced({ streamUid: stream.uid, version, headHash: new Uint8Array(32), encoding: stream.encoding, state });\n",
    },
  ],
});
