import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-authority-is-dialed-address",
  area: "PORT",
  caughtBy: ["portability-switch.source-named-as-given"],
  description: "A target names its source by the address it dialed, not as CreateMigration named it, in the :authority of its calls (PORT-055).",
  edits: [
    {
      file: "services/portability/source-client.ts",
      find: "    \"grpc.default_authority\": named,\n",
      replace: "",
    },
  ],
});
