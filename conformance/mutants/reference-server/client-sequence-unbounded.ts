import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "client-sequence-unbounded",
  area: "APPEND",
  caughtBy: ["append.client-sequence-range"],
  description: "A client sequence above 2^53 - 1 is accepted (and rounded) instead of refused.",
  edits: [
    {
      file: "validation/core-requests.ts",
      find: '  clientSequence: uint64.refine((v) => v >= 1, { message: "must be at least 1" }),',
      replace: '  clientSequence: z.bigint().transform((v) => Number(v)).refine((v) => v >= 1, { message: "must be at least 1" }),',
    },
  ],
});
