import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "subject-moved-without-target",
  area: "PORT",
  description: "SUBJECT_MOVED is sent without the target's address.",
  edits: [{ file: "services/portability/subject-gate.ts", find: "{ target: move.target, subject: move.targetSubject }", replace: "{ subject: move.targetSubject }" }],
});
