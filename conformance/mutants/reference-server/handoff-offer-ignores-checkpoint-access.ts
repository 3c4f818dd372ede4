import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "handoff-offer-ignores-checkpoint-access",
  area: "HANDOFF",
  caughtBy: ["handoff.hidden-after-its-checkpoint-is-deleted"],
  description: "HandoffOffered goes to every other device of the subject, whether or not its platform may read the checkpoint's streams.",
  edits: [
    {
      file: "services/subscription-service.ts",
      find: "      for (const e of checkpoint.entries) {\n        if (!(await mayRead(context, { ownerPlatformId: e.ownerPlatformId, type: e.streamType }))) return SKIP;\n      }\n",
      replace: "",
    },
  ],
});
