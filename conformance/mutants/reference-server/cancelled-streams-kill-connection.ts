import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "cancelled-streams-kill-connection",
  area: "LIMIT",
  caughtBy: ["limit.cancelled-calls-keep-connection"],
  description: "The server never asks a client that cancels many calls to move to a new connection, so Node's HTTP/2 layer kills the connection with GOAWAY(INTERNAL_ERROR) after about 1,000 cancelled calls, failing the calls in flight (LIMIT-031, issue 10 defect 7).",
  edits: [
    {
      file: "ops/connection-guard.ts",
      find: "export const CANCELLED_STREAMS_PER_CONNECTION = 500;",
      replace: "export const CANCELLED_STREAMS_PER_CONNECTION = 1_000_000;",
    },
  ],
});
