import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "device-revocation-ignored",
  area: "DEVICE",
  caughtBy: ["device.revocation-ends-tokens-and-subscriptions"],
  description: "Tokens of revoked devices keep working, and open subscriptions are not told.",
  edits: [
    { file: "auth/middleware.ts", find: "  if (claims.deviceId !== undefined) {\n", replace: "  if (false) {\n" },
    {
      file: "services/subscription-service.ts",
      find: "      if (body.deviceId !== deviceId) return SKIP;\n",
      replace: "      if (body.deviceId !== deviceId || true) return SKIP;\n",
    },
  ],
});
