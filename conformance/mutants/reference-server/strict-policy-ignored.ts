import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "strict-policy-ignored",
  area: "APPEND",
  caughtBy: ["append.strict-policy-requires-expected-version"],
  description: "A blind append to a REQUIRE_EXPECTED_VERSION stream is accepted.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find:
        "    if (\n" +
        "      input.expectedVersion === undefined &&\n" +
        "      row.conflict_policy === Policy.RequireExpectedVersion &&\n" +
        "      input.enforceConflictPolicy !== false\n" +
        "    ) {\n",
      replace: "    if (false) {\n",
    },
  ],
});
