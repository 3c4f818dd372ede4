import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "switch-acknowledges-writes",
  area: "PORT",
  description: "The source keeps acknowledging writes during a switch, so some never reach the target.",
  edits: [{ file: "services/portability/subject-gate.ts", find: "      if (write && state?.hold !== undefined) {\n", replace: "      if (false && state?.hold !== undefined) {\n" }],
});
