import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "list-devices-own-platform-only",
  area: "DEVICE",
  caughtBy: ["identity.three-platforms-share-devices-links-and-handoffs"],
  description: "ListDevices lists only the devices of the caller's platform.",
  edits: [
    {
      file: "services/device-service.ts",
      find: "        devices: page.items.map(deviceMessage),",
      replace: "        devices: page.items.filter((d) => d.platformId === auth.platformId).map(deviceMessage),",
    },
  ],
});
