import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "switch-acknowledges-writes",
  area: "PORT",
  caughtBy: ["portability.transfer-holds-writes-until-commit"],
  description: "The source keeps acknowledging writes during a switch, so some never reach the target.",
  edits: [
    { file: "services/portability/subject-gate.ts", find: "      if (write && state?.hold !== undefined) {\n", replace: "      if (false && state?.hold !== undefined) {\n" },
    // The store's hold would refuse the write in its transaction: it is never taken.
    { file: "services/portability/subject-gate.ts", find: "        taken = await store.holdSubject(subjectId, holder, new Date(since + options.maxHoldMs), new Date(since));\n", replace: '        taken = "held";\n' },
  ],
});
