import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "list-deltas-page-token-skips-access",
  area: "DELTA",
  caughtBy: ["revocation.streaming-calls-after-grant-revocation"],
  description: "ListDeltas trusts a page token as proof of access: a continuation page skips the visibility check.",
  edits: [
    {
      file: "services/stream-service.ts",
      find: "      const req = parseRequest(listDeltasSchema, request);\n      const { stream } = await visibleStream(store, auth, req.stream, \"read\");",
      replace: "      const req = parseRequest(listDeltasSchema, request);\n      const trusted = req.pageToken === \"\" ? undefined : await store.getStream(req.stream.subjectId, req.stream.id);\n      const stream = trusted ?? (await visibleStream(store, auth, req.stream, \"read\")).stream;",
    },
  ],
});
