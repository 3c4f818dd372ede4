import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "hub-forgets-subject-on-detach",
  area: "SUB",
  caughtBy: ["subscription.cancel-leaves-others-running"],
  description: "When one subscription of a subject ends, the others stop getting live events (they see them only at their next heartbeat).",
  edits: [
    {
      file: "events/event-hub.ts",
      find: "        if (set.size === 0 && bySubject.get(subjectId) === set) bySubject.delete(subjectId);\n",
      replace: "        if (bySubject.get(subjectId) === set) bySubject.delete(subjectId);\n",
    },
  ],
});
