import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "resolve-handoff-skips-visibility",
  area: "HANDOFF",
  caughtBy: ["identity.three-platforms-share-devices-links-and-handoffs"],
  description: "AcceptHandoff and DeclineHandoff check only the device, not whether the caller's platform may read the handoff's checkpoint.",
  edits: [
    {
      file: "services/checkpoint-service.ts",
      find: "    await visibleHandoff(auth, name);\n",
      replace: "    requireOwnSubject(auth, name.subjectId, \"read\");\n",
    },
  ],
});
