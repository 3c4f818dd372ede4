import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "import-accepts-wrong-trailer",
  area: "PORT",
  caughtBy: ["portability.import-round-trip-and-idempotent"],
  description: "ImportBundle accepts a bundle whose record count or records digest does not match its records.",
  edits: [
    {
      file: "services/portability/import.ts",
      find: "        if (error instanceof BundleVerificationError) throw invalidField(error.field, error.message);\n        throw error;\n      }\n      // A stream whose snapshot record was optional",
      replace:
        '        if (error instanceof BundleVerificationError && error.field.startsWith("trailer.")) {\n' +
        "          await flushDeltas();\n" +
        "          done = true;\n" +
        '          return { kind: "trailer", trailer: { recordCount: 0n, recordsDigest: Buffer.alloc(32), signature: "" }, signedBy: undefined };\n' +
        "        }\n" +
        "        if (error instanceof BundleVerificationError) throw invalidField(error.field, error.message);\n        throw error;\n      }\n      // A stream whose snapshot record was optional",
    },
  ],
});
