import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "handoff-foreign-target-invalid-field",
  area: "ISO",
  caughtBy: ["isolation.names-inside-a-request-of-another-subject"],
  description: "A handoff offered to another subject's device answers INVALID_FIELD, not SUBJECT_NOT_FOUND.",
  edits: [
    {
      file: "services/checkpoint-service.ts",
      find: "      if (req.targetDevice !== undefined && req.targetDevice.subjectId !== req.parent) throw subjectNotFound();",
      replace: "      if (req.targetDevice !== undefined && req.targetDevice.subjectId !== req.parent) throw invalidField(\"target_device\", \"must be a device of the parent subject\");",
    },
  ],
});
