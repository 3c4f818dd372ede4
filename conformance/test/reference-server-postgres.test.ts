import { describe, it } from "vitest";
import { expectWholeSuitePasses, TEST_DATABASE, WHOLE_SUITE_TIMEOUT_MS } from "./support/whole-suite.js";

describe("the reference server on PostgreSQL", () => {
  it("passes the whole suite (CONTINUITY_STORE, a schema per spawned server)", async () => {
    await expectWholeSuitePasses({ spawnEnv: { CONTINUITY_STORE: TEST_DATABASE } }, ["core", "identity", "portability"]);
  }, WHOLE_SUITE_TIMEOUT_MS);

  it("passes the whole suite as two replicas on one schema, behind the per-call round-robin proxy", async () => {
    // `start --replicas 2`: a supervisor runs two servers on the schema and the proxy sends each
    // call to the other one, so every case that writes and then reads crosses replicas, and
    // what the suite restarts or kills is the whole deployment.
    await expectWholeSuitePasses({ spawnEnv: { CONTINUITY_STORE: TEST_DATABASE, CONTINUITY_REPLICAS: "2" } }, ["core", "identity", "portability"]);
  }, WHOLE_SUITE_TIMEOUT_MS);
});
