import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "export-drops-client-sequence",
  area: "PORT",
  caughtBy: ["portability.export-is-complete-and-verifiable"],
  description: "Delta records leave the bundle without their client sequence, so an importer cannot continue a device's sequence or replay its writes.",
  edits: [
    {
      file: "services/portability/export.ts",
      find: '        yield sealer.record({ record: { $case: "delta", value: wireDelta(delta) } });\n',
      replace: '        yield sealer.record({ record: { $case: "delta", value: { ...wireDelta(delta), clientSequence: 0n } } });\n',
    },
  ],
});
