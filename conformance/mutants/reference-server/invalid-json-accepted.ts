import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "invalid-json-accepted",
  area: "APPEND",
  caughtBy: ["append.check-order"],
  description: "A JSON stream accepts a payload that is not valid JSON, stored as sent.",
  edits: [
    {
      file: "services/stream-service.ts",
      find:
        "    if (!isMalformedPatchError(error)) throw error;\n" +
        "    throw malformed(index, error.message);\n",
      replace:
        "    if (!isMalformedPatchError(error)) throw error;\n" +
        "    return undefined;\n",
    },
  ],
});
