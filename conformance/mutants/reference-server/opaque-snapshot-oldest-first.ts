import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "opaque-snapshot-oldest-first",
  area: "SNAP",
  caughtBy: ["snapshot.opaque-uploads-at-several-versions"],
  description: "GetSnapshot of an opaque stream serves the oldest uploaded snapshot at or below the version, not the newest.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: "\"SELECT * FROM snapshots WHERE subject_id = ? AND stream_id = ? AND version <= ? ORDER BY version DESC LIMIT 1\"",
      replace: "\"SELECT * FROM snapshots WHERE subject_id = ? AND stream_id = ? AND version <= ? ORDER BY version ASC LIMIT 1\"",
    },
  ],
});
