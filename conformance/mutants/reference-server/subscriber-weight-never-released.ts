import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "subscriber-weight-never-released",
  area: "SUB",
  caughtBy: ["live-feed.prompt-reader-never-cut-by-volume"],
  description: "A subscriber's buffer counts the bytes of events it already delivered, so a prompt reader is cut as too slow after 32 MiB.",
  edits: [{ file: "events/bounded-queue.ts", find: "          weight -= weights[head]!;\n", replace: "" }],
});
