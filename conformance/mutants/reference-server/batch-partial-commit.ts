import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "batch-partial-commit",
  area: "APPEND",
  caughtBy: ["append.batch-atomic-on-failure"],
  description: "A batch whose later delta fails commits its earlier deltas.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "      held!.editor.apply(stream.encoding, patches(), jsonBounds(limits));\n",
      replace:
        "      for (const [i, patch] of parsed.entries()) {\n" +
        "        index = i;\n" +
        "        if (patch === undefined) continue;\n" +
        "        try {\n" +
        "          held!.editor.apply(stream.encoding, [patch], jsonBounds(limits));\n" +
        "        } catch (error) {\n" +
        "          if (i === 0) throw error;\n" +
        "          raw = raw.slice(0, i);\n" +
        "          break;\n" +
        "        }\n" +
        "      }\n",
    },
  ],
});
