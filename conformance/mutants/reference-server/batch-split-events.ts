import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "batch-split-events",
  area: "SUB",
  description: "A batch reaches subscribers as one event per delta.",
  edits: [
    {
      file: "services/subscription-service.ts",
      find: '      return { messages: [{ cursor, event: { $case: "deltasAppended", value: { deltas } } }] };\n',
      replace: '      return { messages: deltas.map((d) => ({ cursor, event: { $case: "deltasAppended", value: { deltas: [d] } } })) };\n',
    },
  ],
});
