import { randomBytes } from "node:crypto";
import pg from "pg";
import { PG_MIGRATIONS } from "../store/postgres/migrations.js";
import { createPostgresStore, type PostgresStore, type PostgresStoreOptions } from "../store/postgres/pg-store.js";

/**
 * PostgreSQL for tests: the server in `DATABASE_URL` (default: the local one every
 * development and CI machine here runs, with trust auth), a schema of its own per store.
 * Tests never skip for want of a database: without one they fail.
 *
 * Creating and dropping a schema costs far more than a test's own work, so a closed test
 * store's schema is emptied (its rows deleted, its migrations kept) and handed to the next
 * test of the same worker: an empty schema is a fresh store, with a new epoch. The schemas of
 * a run share the prefix `t_<run>_`, and the run's global teardown drops them all.
 */
export const TEST_DATABASE_URL = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

/** The environment variable that carries the run's schema prefix from the global setup to the workers. */
export const TEST_RUN_ENV = "CONTINUITY_TEST_RUN";

function runPrefix(): string {
  const run = process.env[TEST_RUN_ENV];
  return run !== undefined && /^[a-z0-9]{1,16}$/.test(run) ? `t_${run}_` : "t_";
}

/** A schema name no other test uses. */
export function freshSchemaName(): string {
  return `${runPrefix()}${randomBytes(8).toString("hex")}`;
}

async function withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Drops a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  await withClient((client) => client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
}

/** Drops every schema whose name starts with `prefix` (a run's, at its end). */
export async function dropSchemas(prefix: string): Promise<number> {
  return withClient(async (client) => {
    const rows = (await client.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", [prefix])).rows;
    for (const { nspname } of rows) await client.query(`DROP SCHEMA IF EXISTS ${nspname} CASCADE`);
    return rows.length;
  });
}

/** Emptied schemas of this worker, ready for the next test store. */
const idle: string[] = [];

/** The store's tables, the same in every test schema (read once per worker). */
let tableNames: string[] | undefined;

/**
 * Deletes every row of a store's schema, keeping its tables and migration records. False
 * (and nothing deleted) when a test changed the migration records: that schema is dropped.
 */
async function emptySchema(pool: pg.Pool, schema: string): Promise<boolean> {
  const client = await pool.connect();
  try {
    const applied = (await client.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version")).rows.map((r) => r.version);
    if (applied.join() !== PG_MIGRATIONS.map((m) => m.version).join()) return false;
    tableNames ??= (
      await client.query<{ tablename: string }>("SELECT tablename FROM pg_tables WHERE schemaname = $1 AND tablename <> 'schema_migrations'", [schema])
    ).rows.map((r) => r.tablename);
    // One transaction: the foreign keys between these tables hold again at its end. Test data need not reach the disk.
    await client.query(`BEGIN; SET LOCAL synchronous_commit = off; ${tableNames.map((t) => `DELETE FROM ${t};`).join(" ")} COMMIT;`);
    return true;
  } finally {
    client.release();
  }
}

/** A store in a schema of its own, empty; `close` closes it and frees the schema. */
export async function openTestPostgresStore(
  options: Omit<PostgresStoreOptions, "url" | "schema"> = {},
): Promise<{ store: PostgresStore; schema: string; close(): Promise<void> }> {
  const schema = idle.pop() ?? freshSchemaName();
  const store = await createPostgresStore({ poolSize: 4, ...options, url: TEST_DATABASE_URL, schema });
  let closed = false;
  return {
    store,
    schema,
    async close() {
      if (closed) return;
      closed = true;
      const emptied = await emptySchema(store.pool, schema).catch(() => false);
      await store.close();
      if (emptied) idle.push(schema);
      else await dropSchema(schema);
    },
  };
}
