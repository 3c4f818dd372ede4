import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "erasure-leaves-data",
  area: "ERASE",
  caughtBy: ["erase.subject-erased-everywhere"],
  description: "Erasure removes devices, grants and link codes but leaves the subject, its links and its streams behind.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: '        const deleted = stmt("DELETE FROM subjects WHERE subject_id = ?").run(subjectId).changes > 0;\n',
      replace:
        '        for (const table of ["devices", "grants", "link_codes"]) {\n' +
        "          db.prepare(`DELETE FROM ${table} WHERE subject_id = ?`).run(subjectId);\n" +
        "        }\n" +
        "        const deleted = subjectExists(subjectId);\n",
    },
  ],
});
