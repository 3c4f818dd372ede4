import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "already-exists-reveals-the-stream",
  area: "STREAM",
  caughtBy: ["stream.already-exists-reveals-nothing"],
  description: "STREAM_ALREADY_EXISTS names the existing stream's type and owner, also to a platform that may not read it.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "        case \"already-exists\":\n          throw protocolError(Status.ALREADY_EXISTS, \"STREAM_ALREADY_EXISTS\", \"a stream with this id exists\");",
      replace: "        case \"already-exists\": {\n          const existing = await store.getStream(req.parent, req.streamId);\n          throw protocolError(Status.ALREADY_EXISTS, \"STREAM_ALREADY_EXISTS\", `a stream with this id exists (type ${existing?.type})`, { ownerPlatform: existing?.ownerPlatformId ?? \"\" });\n        }",
    },
  ],
});
