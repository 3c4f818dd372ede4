import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "migration-source-allows-unspecified",
  area: "PORT",
  caughtBy: ["portability.migration-source-must-be-allowed"],
  description: "The source policy blocks private and loopback addresses but lets 0.0.0.0 and :: through, which Linux connects to the machine itself.",
  edits: [
    {
      file: "services/portability/source-policy.ts",
      find: '      if (address.range() === "unicast") return true;\n',
      replace: '      if (address.range() === "unicast" || address.range() === "unspecified") return true;\n',
    },
  ],
});
