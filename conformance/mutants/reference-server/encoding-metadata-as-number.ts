import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "encoding-metadata-as-number",
  area: "SNAP",
  caughtBy: ["errors.metadata-carries-the-exact-values"],
  description: "ENCODING_UNSUPPORTED on upload carries the encoding as its number, not its value name.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "          \"snapshots are uploaded for opaque streams only; the server materializes JSON streams\",\n          { encoding: encodingName(stream.encoding) },",
      replace: "          \"snapshots are uploaded for opaque streams only; the server materializes JSON streams\",\n          { encoding: String(stream.encoding) },",
    },
  ],
});
