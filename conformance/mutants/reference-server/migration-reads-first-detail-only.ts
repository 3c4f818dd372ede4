import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-reads-first-detail-only",
  area: "PORT",
  caughtBy: ["portability-switch.moved-answer-among-other-details"],
  description: "A target reads the first detail of a source's error as its ErrorInfo, so a SUBJECT_MOVED whose ErrorInfo comes after another detail is not seen and a migration that switched is reported failed (PORT-053, PORT-052).",
  edits: [
    {
      file: "services/portability/source-client.ts",
      find: "      if (typeUrl.endsWith(\"/google.rpc.ErrorInfo\")) {\n",
      replace: "      {\n",
    },
  ],
});
