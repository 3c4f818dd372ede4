import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "display-name-counts-bytes",
  area: "TOKEN",
  caughtBy: ["limit.utf8-bytes-at-exact-boundaries"],
  description: "device_display_name is limited to 100 UTF-8 bytes, not 100 characters.",
  edits: [
    {
      file: "services/token-service.ts",
      find: "  deviceDisplayName: z.string().max(100, \"at most 100 characters\"),",
      replace: "  deviceDisplayName: z.string().refine((value) => Buffer.byteLength(value) <= 100, \"at most 100 characters\"),",
    },
  ],
});
