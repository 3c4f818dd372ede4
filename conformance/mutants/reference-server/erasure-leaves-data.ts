import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "erasure-leaves-data",
  area: "ERASE",
  caughtBy: ["erase.subject-erased-everywhere"],
  description: "Erasure removes devices, grants and link codes but leaves the subject, its links and its streams behind.",
  edits: [
    {
      file: "store/sqlite/erasure.ts",
      find: '        stmt("DELETE FROM streams WHERE subject_id = ?").run(subjectId);\n',
      replace: "",
    },
    {
      file: "store/sqlite/erasure.ts",
      find: '      if (found) write(() => stmt("DELETE FROM subjects WHERE subject_id = ?").run(subjectId));\n',
      replace:
        '      for (const table of ["devices", "grants", "link_codes"]) {\n' +
        "        if (found) db.prepare(`DELETE FROM ${table} WHERE subject_id = ?`).run(subjectId);\n" +
        "      }\n",
    },
  ],
});
