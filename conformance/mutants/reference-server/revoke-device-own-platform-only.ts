import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "revoke-device-own-platform-only",
  area: "DEVICE",
  caughtBy: ["identity.three-platforms-share-devices-links-and-handoffs"],
  description: "A platform may revoke only the devices registered through it; another platform's device answers DEVICE_NOT_FOUND.",
  edits: [
    {
      file: "services/device-service.ts",
      find: "      const device = await deps.store.revokeDevice(subjectId, deviceId, deps.clock());",
      replace: "      const existing = await deps.store.getDevice(subjectId, deviceId);\n      const device = existing === undefined || existing.platformId !== auth.platformId ? undefined : await deps.store.revokeDevice(subjectId, deviceId, deps.clock());",
    },
  ],
});
