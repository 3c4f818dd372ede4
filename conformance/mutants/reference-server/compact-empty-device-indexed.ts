import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "compact-empty-device-indexed",
  area: "SUB",
  caughtBy: ["subscription.compact-batch-without-a-device"],
  description: "A compact subscription gives a batch without a device (an imported one) an index of its own and defines it as the empty name, where device_index 0 stands for no device and is never defined (SUB-062).",
  edits: [
    {
      file: "services/compact-delivery.ts",
      find: 'let deviceIndex = batch.device === "" ? 0 : devices.get(batch.device);',
      replace: "let deviceIndex = devices.get(batch.device);",
    },
  ],
});
