import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-never-reports-switching",
  area: "PORT",
  caughtBy: ["portability-switch.switch-reported-while-it-runs"],
  description: "A target reports its migration as copying through its switch, never MIGRATION_STATE_SWITCHING (PORT-030).",
  edits: [
    {
      file: "services/portability/migration.ts",
      find: "      await update({ state: \"switching\" });\n",
      replace: "",
    },
  ],
});
