import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "checkpoint-foreign-stream-not-found",
  area: "ISO",
  caughtBy: ["isolation.names-inside-a-request-of-another-subject"],
  description: "A checkpoint naming another subject's stream under the caller's own parent answers STREAM_NOT_FOUND, not SUBJECT_NOT_FOUND.",
  edits: [
    {
      file: "services/checkpoint-service.ts",
      find: "      if (req.streams.some((s) => s.stream.subjectId !== req.parent)) throw subjectNotFound();",
      replace: "      if (req.streams.some((s) => s.stream.subjectId !== req.parent)) throw streamNotFound();",
    },
  ],
});
