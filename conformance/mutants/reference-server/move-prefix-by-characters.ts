import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "move-prefix-by-characters",
  area: "HASH",
  caughtBy: ["append.move-into-a-child-compares-pointer-tokens"],
  description: "A JSON Patch move is refused as malformed when its path merely starts with the characters of its from (/a to /ab), not only when it names a location inside from.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "    checkJsonDeltaStructure(encoding, document);\n",
      replace:
        "    checkJsonDeltaStructure(encoding, document);\n" +
        "    const moves = Array.isArray(document) ? (document as { op?: unknown; from?: unknown; path?: unknown }[]) : [];\n" +
        '    if (moves.some((o) => o !== null && o.op === "move" && typeof o.from === "string" && typeof o.path === "string" && o.path !== o.from && o.path.startsWith(o.from))) {\n' +
        '      throw malformed(index, "move into its own child");\n' +
        "    }\n",
    },
  ],
});
