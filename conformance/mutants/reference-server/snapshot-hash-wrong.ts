import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "snapshot-hash-wrong",
  area: "SNAP",
  description: "Snapshot hashes omit the head hash (hashing zeros in its place).",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "    const header = snapshotPreimageHeader({ streamUid: stream.uid, version, headHash, encoding: stream.encoding, sizeBytes: state.length });\n",
      replace: "    const header = snapshotPreimageHeader({ streamUid: stream.uid, version, headHash: new Uint8Array(32), encoding: stream.encoding, sizeBytes: state.length });\n",
    },
  ],
});
