import { randomBytes } from "node:crypto";
import pg from "pg";
import { createPostgresStore, type PostgresStore, type PostgresStoreOptions } from "../store/postgres/pg-store.js";

/**
 * PostgreSQL for tests: the server in `DATABASE_URL` (default: the local one every
 * development and CI machine here runs, with trust auth), a fresh schema per store, dropped
 * when the test is done. Tests never skip for want of a database: without one they fail.
 */
export const TEST_DATABASE_URL = process.env["DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

/** A schema name no other test uses. */
export function freshSchemaName(): string {
  return `t_${randomBytes(8).toString("hex")}`;
}

/** Drops a test schema and everything in it. */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

/** A store in a fresh schema; `close` closes it and drops the schema. */
export async function openTestPostgresStore(
  options: Omit<PostgresStoreOptions, "url" | "schema"> & { readonly schema?: string } = {},
): Promise<{ store: PostgresStore; schema: string; close(): Promise<void> }> {
  const schema = options.schema ?? freshSchemaName();
  const store = await createPostgresStore({ poolSize: 4, ...options, url: TEST_DATABASE_URL, schema });
  return {
    store,
    schema,
    async close() {
      await store.close();
      await dropSchema(schema);
    },
  };
}
