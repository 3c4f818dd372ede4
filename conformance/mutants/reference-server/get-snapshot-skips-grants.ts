import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "get-snapshot-skips-grants",
  area: "SNAP",
  caughtBy: ["revocation.streaming-calls-after-grant-revocation"],
  description: "GetSnapshot checks the subject but not the platform's read access, so a revoked or missing grant still downloads state.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "      const req = parseRequest(getSnapshotSchema, request);\n      const { stream } = await visibleStream(store, auth, req.stream, \"read\");",
      replace: "      const req = parseRequest(getSnapshotSchema, request);\n      requireOwnSubject(auth, req.stream.subjectId, \"read\");\n      const stream = await store.getStream(req.stream.subjectId, req.stream.id);\n      if (stream === undefined) throw streamNotFound();",
    },
  ],
});
