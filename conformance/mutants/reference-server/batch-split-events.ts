import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "batch-split-events",
  area: "SUB",
  caughtBy: ["subscription.events-carry-every-field"],
  description: "A batch reaches subscribers as one event per delta.",
  edits: [
    {
      file: "services/subscription-service.ts",
      find: '  return { messages: [message] };\n',
      replace:
        '  const value = message.event?.$case === "deltasAppended" ? message.event.value.deltas : [];\n' +
        '  const cursor = message.cursor;\n' +
        '  return { messages: value.map((d) => ({ cursor, event: { $case: "deltasAppended" as const, value: { deltas: [d] } } })) };\n',
    },
  ],
});
