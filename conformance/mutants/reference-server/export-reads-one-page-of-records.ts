import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "export-reads-one-page-of-records",
  area: "PORT",
  caughtBy: ["portability-export.large-subject-exported-whole"],
  description: "ExportSubject reads only the first page of each kind of identity record, so a subject with more than 200 checkpoints loses the rest in its bundle (PORT-003).",
  edits: [
    {
      file: "services/portability/export.ts",
      find: "      cursor = page.nextAfter;\n    }\n  }\n  yield await sealer.trailer(",
      replace: "      cursor = undefined;\n    }\n  }\n  yield await sealer.trailer(",
    },
  ],
});
