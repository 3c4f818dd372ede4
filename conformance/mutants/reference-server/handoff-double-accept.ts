import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "handoff-double-accept",
  area: "HANDOFF",
  caughtBy: ["handoff.accept-decline-and-double-accept"],
  description: "A second accept of the same handoff succeeds.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find:
        '          return { kind: "already-resolved", handoff: toHandoff(row) };\n' +
        "        }\n" +
        '        if (row.source_device === input.deviceId) return { kind: "not-eligible" };\n',
      replace:
        '          const again = row.state === "accepted" && input.resolution === "accepted";\n' +
        '          if (!again) return { kind: "already-resolved", handoff: toHandoff(row) };\n' +
        "        }\n" +
        '        if (row.source_device === input.deviceId) return { kind: "not-eligible" };\n',
    },
  ],
});
