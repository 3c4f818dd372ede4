import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALL_CASES } from "../src/cases/index.js";
import { generatePlatformKeySet, writePlatformsFile, type PlatformKeySet } from "../src/fixtures/platform-keys.js";
import { dropRunSchemas, POSTGRES_MUTATE, runStoreUrl, SERVER_PACKAGE, strykerOptions } from "../src/mutation.js";
import { loadServerModules, startInProcessTarget, type ServerModules } from "../src/mutation/in-process-target.js";
import { loadRequirements } from "../src/runner/requirements.js";
import { runSuite } from "../src/runner/run-suite.js";
import { SPAWN_AUDIENCE } from "../src/run.js";
import { TEST_DATABASE } from "./support/whole-suite.js";

// `conformance:mutation --store postgres` runs the in-process server on its PostgreSQL store.
// This runs a real case that way, over a real connection: it appends, restarts the server on
// the same data and reads back and replays what it acknowledged, which passes only if the
// restart reopened the same schema. Needs the PostgreSQL in DATABASE_URL; never skips.
const CASE = "durability.acknowledged-writes-survive-kill";

let client: pg.Client;
let scratch: string;
let platforms: PlatformKeySet;
let platformsFile: string;
let modules: ServerModules;

beforeAll(async () => {
  client = new pg.Client({ connectionString: TEST_DATABASE });
  await client.connect();
  scratch = await mkdtemp(join(tmpdir(), "mutation-postgres-"));
  platforms = await generatePlatformKeySet();
  platformsFile = join(scratch, "platforms.json");
  await writePlatformsFile(platforms, platformsFile);
  modules = await loadServerModules(join(SERVER_PACKAGE, "src"));
}, 60_000);

afterAll(async () => {
  await client?.end();
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
});

async function schemasOf(prefix: string): Promise<string[]> {
  return (await client.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname", [prefix])).rows.map((r) => r.nspname);
}

describe("the in-process target on the PostgreSQL store", () => {
  it("is what --store postgres configures: the store's code to mutate, and the URL for the runner", () => {
    const url = runStoreUrl(`${TEST_DATABASE}?schema=other`, "abcd1234");
    expect(new URL(url).searchParams.get("schema")).toBe("mut_abcd1234");
    const options = strykerOptions({ store: url });
    expect(options["mutate"]).toEqual([...POSTGRES_MUTATE]);
    expect((options["conformance"] as { store?: string }).store).toBe(url);
    expect(strykerOptions()["mutate"]).toContain("!src/store/postgres/**");
  });

  it("runs a case on a schema of its own, reopens it on restart, takes new ones for wiped data and a sibling, and drops them all", async () => {
    const run = randomBytes(4).toString("hex");
    const store = runStoreUrl(TEST_DATABASE, run);
    const prefix = `mut_${run}_`;
    const target = await startInProcessTarget({ modules, platformsFile, audience: SPAWN_AUDIENCE, store });
    let sibling: Awaited<ReturnType<typeof startInProcessTarget>> | undefined;
    try {
      const [schema] = await schemasOf(prefix);
      expect(schema).toMatch(/^mut_[0-9a-f]{8}_[0-9a-f]{12}$/);
      const conformanceCase = ALL_CASES.find((c) => c.id === CASE)!;
      const report = await runSuite({
        target,
        platforms,
        audience: SPAWN_AUDIENCE,
        claimedProfiles: ["core"],
        cases: [conformanceCase],
        filter: undefined,
        concurrency: 1,
        knownFailures: new Map(),
        requirements: await loadRequirements(),
        bail: false,
      });
      expect(report.results.map((r) => [r.id, r.status, r.message])).toEqual([[CASE, "pass", undefined]]);
      // Its three deltas are in PostgreSQL, in that one schema, across the restart.
      expect((await client.query(`SELECT count(*)::int AS n FROM ${schema}.deltas`)).rows).toEqual([{ n: 3 }]);
      expect(await schemasOf(prefix)).toEqual([schema]);
      await target.restart!({ wipeData: true, kill: false });
      expect(await schemasOf(prefix)).toHaveLength(2);
      sibling = await target.spawnSibling!();
      expect(await schemasOf(prefix)).toHaveLength(3);
    } finally {
      await sibling?.stop();
      await target.stop();
    }
    expect(await schemasOf(prefix)).toEqual([]);
  }, 60_000);

  it("drops what a run's killed runners left behind", async () => {
    const store = runStoreUrl(TEST_DATABASE, randomBytes(4).toString("hex"));
    const prefix = `${new URL(store).searchParams.get("schema")}_`;
    await client.query(`CREATE SCHEMA ${prefix}left1; CREATE TABLE ${prefix}left1.t (x int); CREATE SCHEMA ${prefix}left2`);
    // Another run's schema is not this run's to drop.
    const other = `mut_${randomBytes(4).toString("hex")}_kept`;
    await client.query(`CREATE SCHEMA ${other}`);
    try {
      expect(await dropRunSchemas(store)).toBe(2);
      expect(await schemasOf(prefix)).toEqual([]);
      expect(await schemasOf(other)).toEqual([other]);
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${other} CASCADE`);
    }
  });
});
