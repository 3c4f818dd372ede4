import { join } from "node:path";
import { describe, it } from "vitest";
import { REFERENCE_SERVER_SRC } from "../src/mutants.js";
import { REFERENCE_SERVER } from "../src/run.js";
import { bundleServer } from "../src/runner/server-bundle.js";
import { expectWholeSuitePasses, TEST_DATABASE, WHOLE_SUITE_TIMEOUT_MS } from "./support/whole-suite.js";

/** A bundle of its own (gitignored): the SQLite run beside this one writes the baseline's. */
const BUNDLE = join(REFERENCE_SERVER.cwd, ".mutants", "postgres-replicas", "main.mjs");

describe("the reference server on PostgreSQL", () => {
  // One run, as two replicas: a single server on PostgreSQL runs the same store code (each
  // commit's notice goes through LISTEN/NOTIFY whether or not another replica listens), so the
  // two-replica run covers it and adds every call crossing replicas. It ran as a third whole
  // suite until it made this file the longest path of a CI run.
  it("passes the whole suite as two replicas on one schema, behind the per-call round-robin proxy", async () => {
    // `start --replicas 2`: a supervisor runs two servers on the schema and the proxy sends each
    // call to the other one, so every case that writes and then reads crosses replicas, and
    // what the suite restarts or kills is the whole deployment. Bundled as the SQLite run's
    // server is (its supervisor starts the replicas from the same file): under tsx each of the
    // three processes of every start paid about 2 s of CPU to load the sources, five starts a
    // run. `pnpm start` under tsx is what test/ops/cli.test.ts and the replica tests start.
    const spawn = await bundleServer(REFERENCE_SERVER_SRC, BUNDLE, REFERENCE_SERVER.cwd);
    await expectWholeSuitePasses({ spawn, spawnCwd: REFERENCE_SERVER.cwd, spawnEnv: { CONTINUITY_STORE: TEST_DATABASE, CONTINUITY_REPLICAS: "2" } }, ["core", "identity", "portability"]);
  }, WHOLE_SUITE_TIMEOUT_MS);
});
