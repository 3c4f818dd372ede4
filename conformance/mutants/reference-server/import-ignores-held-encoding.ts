import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-ignores-held-encoding",
  area: "PORT",
  caughtBy: ["portability-edges.import-refuses-conflicting-streams"],
  description: "ImportBundle takes a stream record for the stream the subject holds under its id and uid although its encoding differs (PORT-048).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "        if (result.stream.encoding !== stream.encoding || result.stream.type !== wire.type",
      replace: "        if (result.stream.type !== wire.type",
    },
  ],
});
