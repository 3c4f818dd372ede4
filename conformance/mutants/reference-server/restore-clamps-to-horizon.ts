import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "restore-clamps-to-horizon",
  area: "RESTORE",
  caughtBy: ["restore.checkpoint-below-the-horizon-refused"],
  description: "Restoring a checkpoint whose version fell below the horizon restores the oldest state still kept (the horizon's) instead of failing.",
  edits: [
    {
      file: "services/checkpoint-service.ts",
      find: "        const materialized = await deps.jsonHeads.stateAt(stream, entry.version);",
      replace: "        const materialized = await deps.jsonHeads.stateAt(stream, Math.max(entry.version, stream.horizonVersion));",
    },
  ],
});
