import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "bundle-drops-record",
  area: "PORT",
  caughtBy: ["portability.export-is-complete-and-verifiable"],
  description: "ExportSubject leaves each stream's head delta out of the bundle (and out of its digest).",
  edits: [
    {
      file: "services/portability/export.ts",
      find: '        yield sealer.record({ record: { $case: "delta", value: wireDelta(delta) } });\n',
      replace: '        if (delta.version !== stream.headVersion) yield sealer.record({ record: { $case: "delta", value: wireDelta(delta) } });\n',
    },
  ],
});
