import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "link-code-reusable",
  area: "LINK",
  caughtBy: ["link.code-redeemed-once"],
  description: "A link code can be redeemed more than once.",
  edits: [
    {
      file: "store/sqlite/sqlite-store.ts",
      find: '        if (code.used_at !== null) return { kind: "invalid" };\n',
      replace: "",
    },
  ],
});
