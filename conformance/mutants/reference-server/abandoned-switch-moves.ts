import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "abandoned-switch-moves",
  area: "PORT",
  caughtBy: ["portability.transfer-holds-writes-until-commit"],
  description: "A switch that ends without commit records the move anyway, stranding the subject.",
  edits: [
    {
      file: "services/portability-service.ts",
      find: "      } finally {\n        hold.release();\n      }\n",
      replace: "      } finally {\n        await hold.commit({ subjectId, target: begin.target, targetSubject: begin.targetSubject, movedAt: deps.clock() }).catch(() => undefined);\n        hold.release();\n      }\n",
    },
  ],
});
