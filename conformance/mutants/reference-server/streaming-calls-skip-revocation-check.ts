import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "streaming-calls-skip-revocation-check",
  area: "AUTH",
  caughtBy: ["revocation.streaming-calls-refused-after-device-revocation"],
  description: "Server-streaming calls (GetSnapshot, Subscribe, ExportSubject) check the token's signature and expiry but not whether its device, link or subject is still there.",
  edits: [
    {
      file: "auth/middleware.ts",
      find: "      auth = await authenticate(bearerToken(context), deps);",
      replace: "      auth = call.method.responseStream ? await deps.tokens.verifyAccessToken(bearerToken(context)) : await authenticate(bearerToken(context), deps);",
    },
  ],
});
