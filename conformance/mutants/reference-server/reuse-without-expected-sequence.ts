import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "reuse-without-expected-sequence",
  area: "APPEND",
  caughtBy: ["append.reuse-with-different-content-refused"],
  description: "CLIENT_SEQUENCE_REUSED does not say which sequence the server would accept next.",
  edits: [{ file: "services/stream-service.ts", find: "{ clientSequence: String(result.clientSequence), expectedSequence: String(result.expectedSequence) }", replace: "{ clientSequence: String(result.clientSequence) }" }],
});
