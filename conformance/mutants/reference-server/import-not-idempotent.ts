import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-not-idempotent",
  area: "PORT",
  caughtBy: ["portability.import-resumes-after-interruption"],
  description: "Importing a bundle again fails on the streams the first import created instead of skipping them.",
  edits: [
    {
      file: "services/portability/import.ts",
      find: '      case "exists":\n',
      replace: '      case "exists":\n        throw protocolError(Status.ALREADY_EXISTS, "STREAM_ALREADY_EXISTS", "the stream exists");\n',
    },
  ],
});
