import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "snapshot-stale-state",
  area: "SNAP",
  caughtBy: ["snapshot.merge-patch-states-match"],
  description: "GetSnapshot at the head serves the state one delta behind (with the head's hash).",
  edits: [
    {
      file: "services/stream-service.ts",
      find:
        "    const result = await jsonHeads.canonicalBytes(stream, version);\n" +
        '    if (!("bytes" in result)) throw versionCheckError(result);\n' +
        "    return { state: result.bytes, headHash: result.headHash };\n",
      replace:
        "    const stale = version === stream.headVersion && version > stream.horizonVersion;\n" +
        "    const result = await jsonHeads.canonicalBytes(stream, stale ? version - 1 : version);\n" +
        '    if (!("bytes" in result)) throw versionCheckError(result);\n' +
        "    return { state: result.bytes, headHash: stale ? stream.headHash : result.headHash };\n",
    },
  ],
});
