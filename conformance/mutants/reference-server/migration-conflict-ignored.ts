import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-conflict-ignored",
  area: "PORT",
  caughtBy: ["portability.migration-conflict-and-cancel"],
  description: "A second migration of a subject starts while one is running.",
  edits: [
    { file: "services/portability-service.ts", find: "      if (active !== undefined) throw protocolError(", replace: "      if (active === null) throw protocolError(" },
    { file: "store/sqlite/portability.ts", find: '          if (other !== undefined) return "conflict" as const;\n', replace: "" },
  ],
});
