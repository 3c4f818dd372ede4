import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "delta-hash-wrong-bytes",
  area: "HASH",
  caughtBy: ["hash.canonical-json-vectors"],
  description: "Delta hashes cover the payload as sent instead of its canonical JSON.",
  edits: [
    {
      file: "services/stream-service.ts",
      find:
        "      encoding: stream.encoding,\n" +
        "      payload,\n" +
        "    });\n" +
        "    deltas.push(",
      replace:
        "      encoding: stream.encoding,\n" +
        "      payload: bytes,\n" +
        "    });\n" +
        "    deltas.push(",
    },
  ],
});
