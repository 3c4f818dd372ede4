import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-batches-judged-together",
  area: "PORT",
  caughtBy: ["portability-edges.import-judges-each-append-apart"],
  description: "An import judges the copies, deeper moves and shifts of every delta it stores at once together, so a bundle of appends each within its bounds is refused (PORT-049, LIMIT-021).",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "held.editor.applyGroups(encoding, groups.map(payloads), bounds);",
      replace: "(held.editor.apply(encoding, groups.flatMap((group) => [...payloads(group)]), bounds), groups.length);",
    },
  ],
});
