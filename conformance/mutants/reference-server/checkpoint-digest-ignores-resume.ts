import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "checkpoint-digest-ignores-resume",
  area: "CKPT",
  caughtBy: ["checkpoint.resume-limit-exact-boundary"],
  description: "The checkpoint digest is computed without the resume payload.",
  edits: [
    {
      file: "services/checkpoint-service.ts",
      find: "headHash: e.headHash })),\n            resume,\n",
      replace: "headHash: e.headHash })),\n            resume: undefined,\n",
    },
  ],
});
