import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "erasure-deletes-by-stream-id",
  area: "ERASE",
  caughtBy: ["erase.neighbour-with-the-same-ids-untouched"],
  description: "Erasure clears deltas by stream id without the subject, so another subject's streams of the same ids lose their history.",
  edits: [
    {
      file: "store/sqlite/erasure.ts",
      find: '        stmt("DELETE FROM streams WHERE subject_id = ?").run(subjectId);\n',
      replace:
        '        stmt("DELETE FROM deltas WHERE stream_key IN (SELECT stream_key FROM stream_keys WHERE stream_id IN (SELECT stream_id FROM streams WHERE subject_id = ?))").run(subjectId);\n' +
        '        stmt("DELETE FROM streams WHERE subject_id = ?").run(subjectId);\n',
    },
  ],
});
