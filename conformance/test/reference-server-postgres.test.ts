import { describe, it } from "vitest";
import { expectWholeSuitePasses, TEST_DATABASE, WHOLE_SUITE_TIMEOUT_MS } from "./support/whole-suite.js";

describe("the reference server on PostgreSQL", () => {
  // One run, as two replicas: a single server on PostgreSQL runs the same store code (each
  // commit's notice goes through LISTEN/NOTIFY whether or not another replica listens), so the
  // two-replica run covers it and adds every call crossing replicas. It ran as a third whole
  // suite until it made this file the longest path of a CI run.
  it("passes the whole suite as two replicas on one schema, behind the per-call round-robin proxy", async () => {
    // `start --replicas 2`: a supervisor runs two servers on the schema and the proxy sends each
    // call to the other one, so every case that writes and then reads crosses replicas, and
    // what the suite restarts or kills is the whole deployment.
    await expectWholeSuitePasses({ spawnEnv: { CONTINUITY_STORE: TEST_DATABASE, CONTINUITY_REPLICAS: "2" } }, ["core", "identity", "portability"]);
  }, WHOLE_SUITE_TIMEOUT_MS);
});
