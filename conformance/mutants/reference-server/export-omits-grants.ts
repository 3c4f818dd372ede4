import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "export-omits-grants",
  area: "PORT",
  caughtBy: ["portability.export-is-complete-and-verifiable"],
  description: "ExportSubject leaves the grant records out of the bundle, so the person's consents stay behind.",
  edits: [
    {
      file: "services/portability/export.ts",
      find: '  const kinds: SubjectRecordKind[] = ["checkpoint", "account-link", "device", "grant"];\n',
      replace: '  const kinds: SubjectRecordKind[] = ["checkpoint", "account-link", "device"];\n',
    },
  ],
});
