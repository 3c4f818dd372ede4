import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "connection-streams-below-hundred",
  area: "LIMIT",
  caughtBy: ["limit.hundred-calls-on-one-connection"],
  description: "A connection may have only 50 calls open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS 50), so a client's 51st call or subscription on one connection waits (LIMIT-030).",
  edits: [
    {
      file: "ops/connection-guard.ts",
      find: '"grpc.max_concurrent_streams": limits.maxStreamsPerConnection,',
      replace: '"grpc.max_concurrent_streams": Math.min(50, limits.maxStreamsPerConnection),',
    },
  ],
});
