import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "incremental-export-ignores-after",
  area: "PORT",
  caughtBy: ["portability.incremental-export"],
  description: "ExportSubject ignores the positions the receiver holds and exports everything.",
  edits: [{ file: "services/portability/export.ts", find: "    const held = after.get(stream.uid);\n", replace: "    const held = undefined as number | undefined;\n" }],
});
