import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "batch-partial-commit",
  area: "APPEND",
  description: "A batch whose later delta fails commits its earlier deltas.",
  edits: [
    {
      file: "services/stream-service.ts",
      find:
        "        } catch (error) {\n" +
        "          if (isPatchNotApplicableError(error)) {\n",
      replace:
        "        } catch (error) {\n" +
        "          if (deltas.length > 0) break;\n" +
        "          if (isPatchNotApplicableError(error)) {\n",
    },
  ],
});
