import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "checkpoint-stream-limit-off-by-one",
  area: "CKPT",
  caughtBy: ["checkpoint.stream-count-at-the-limit"],
  description: "A checkpoint of exactly max_checkpoint_streams streams is refused.",
  edits: [
    {
      file: "services/checkpoint-service.ts",
      find: "      if (req.streams.length > limits.maxCheckpointStreams) {",
      replace: "      if (req.streams.length >= limits.maxCheckpointStreams) {",
    },
  ],
});
