import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "upload-lands-on-recreated-stream",
  area: "SNAP",
  caughtBy: ["snapshot.upload-across-a-recreated-stream-stores-nothing"],
  description: "An upload is stored under the stream id its header named, even when that stream was deleted and a new one created under the id while the bytes arrived.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "        verify: (current, hashAtVersion) =>\n          current.uid === stream.uid && Buffer.from(hashAtVersion).equals(Buffer.from(headHash)),\n",
      replace: "        verify: () => true,\n",
    },
  ],
});
