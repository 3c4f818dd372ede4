import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "resume-limit-ignored",
  area: "LIMIT",
  caughtBy: ["checkpoint.resume-limit-exact-boundary"],
  description: "Resume payloads above max_resume_payload_bytes (4096 canonical bytes) are accepted.",
  edits: [{ file: "services/checkpoint-service.ts", find: "      if (resumeBytes.length > limits.maxResumePayloadBytes) {\n", replace: "      if (false) {\n" }],
});
