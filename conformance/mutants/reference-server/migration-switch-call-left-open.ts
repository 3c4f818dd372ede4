import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-switch-call-left-open",
  area: "PORT",
  caughtBy: ["portability-switch.refused-switch-ends-the-call"],
  description: "A target that fails a migration during its switch leaves its TransferSubject call open, so the source holds the subject's writes until its hold limit (PORT-054).",
  edits: [
    {
      file: "services/portability/source-client.ts",
      find: "      signal.addEventListener(\"abort\", () => call.cancel(), { once: true });\n      return {\n        send:",
      replace: "      return {\n        send:",
    },
  ],
});
