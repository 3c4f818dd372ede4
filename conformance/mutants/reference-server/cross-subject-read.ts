import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "cross-subject-read",
  area: "ISO",
  caughtBy: ["isolation.other-subject-is-not-found"],
  description: "A token may read another subject's streams (writes stay isolated).",
  edits: [
    {
      file: "auth/scopes.ts",
      find: "  if (subjectId === auth.subjectId) return;\n",
      replace: '  if (subjectId === auth.subjectId || intent === "read") return;\n',
    },
  ],
});
