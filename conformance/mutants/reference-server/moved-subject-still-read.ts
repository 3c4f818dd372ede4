import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "moved-subject-still-read",
  area: "PORT",
  caughtBy: ["portability.transfer-holds-writes-until-commit"],
  description: "After a move the source still answers reads of the subject instead of SUBJECT_MOVED.",
  edits: [{ file: "services/portability/subject-gate.ts", find: "        move = await store.getSubjectMove(subjectId);\n", replace: "        move = write ? await store.getSubjectMove(subjectId) : undefined;\n" }],
});
