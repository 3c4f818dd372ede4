import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "subject-moved-without-target",
  area: "PORT",
  caughtBy: ["portability.transfer-holds-writes-until-commit"],
  description: "SUBJECT_MOVED is sent without the target's address.",
  edits: [{ file: "services/portability/subject-gate.ts", find: "{ target: move.target, subject: move.targetSubject }", replace: "{ subject: move.targetSubject }" }],
});
