import { createHash } from "node:crypto";
import pg from "pg";
import type { ClientBase, PoolClient, QueryConfig, QueryResultRow } from "pg";

/**
 * The PostgreSQL plumbing the store is built on: a pool whose connections work in the
 * store's schema and read `bigint` as JS numbers, and transactions over it.
 */

/** Runs one statement and returns its rows. */
export type Query = <R extends QueryResultRow = QueryResultRow>(sql: string, params?: readonly unknown[]) => Promise<R[]>;

const INT8_OID = 20;

/**
 * `bigint` columns (versions, sequences, times, COUNT) arrive as strings by default. The
 * store contract keeps them as numbers, and the wire layer refuses anything above
 * `Number.MAX_SAFE_INTEGER` before it reaches the store, so they are parsed as numbers here,
 * for this pool only (not through pg's global type registry).
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID && format !== "binary" ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig["getTypeParser"],
};

/** Where a store lives: a server and database (the URL) and a schema in it. */
export interface PgLocation {
  readonly connectionString: string;
  readonly schema: string;
}

/**
 * Splits `postgres://…?schema=name` into the URL pg understands and the schema (default
 * `continuity`); the schema is the store's, not a libpq parameter.
 */
export function parsePgLocation(url: string, defaultSchema = "continuity"): PgLocation {
  const parsed = new URL(url);
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new Error(`not a postgres:// URL: ${parsed.protocol}`);
  }
  const schema = parsed.searchParams.get("schema") ?? defaultSchema;
  parsed.searchParams.delete("schema");
  return { connectionString: parsed.toString(), schema };
}

/**
 * A pool of connections whose `search_path` is the store's schema. `synchronousCommit` off
 * acknowledges a commit once it is in PostgreSQL's WAL buffers, not yet on disk: it survives
 * the death of any Continuity server, not a crash of PostgreSQL itself (see `Durability`).
 */
export function createPgPool(location: PgLocation, max: number, synchronousCommit: boolean, onError: (error: unknown) => void): pg.Pool {
  const pool = new pg.Pool({
    connectionString: location.connectionString,
    max,
    types,
    // Synchronous: whatever the database is configured with (on, remote_apply, …); else off.
    options: `-c search_path=${location.schema}${synchronousCommit ? "" : " -c synchronous_commit=off"}`,
    application_name: "continuity-server",
    idleTimeoutMillis: 30_000,
  });
  // An idle connection that the server drops (restart, idle timeout) is reported here; the
  // pool replaces it on next use, so it is not a reason to crash.
  pool.on("error", onError);
  return pool;
}

/** A connection outside the pool (LISTEN needs its own), in the store's schema. */
export function createPgClient(location: PgLocation): pg.Client {
  return new pg.Client({
    connectionString: location.connectionString,
    types,
    options: `-c search_path=${location.schema}`,
    application_name: "continuity-server-listener",
  });
}

/** Distinct statement texts prepared by name at most; later ones are parsed each time. */
const MAX_PREPARED = 512;
const statementNames = new Map<string, string>();

/**
 * A statement as a named prepared statement: each connection parses and plans it once and
 * then only binds, which is most of the cost of a short statement. The store's statements are
 * a fixed set of texts (lists of values go in arrays, not in the text), so the names stay few.
 */
export function prepared(sql: string, params?: readonly unknown[]): QueryConfig<unknown[]> {
  let name = statementNames.get(sql);
  if (name === undefined && statementNames.size < MAX_PREPARED) {
    name = `c_${createHash("sha256").update(sql).digest("hex").slice(0, 24)}`;
    statementNames.set(sql, name);
  }
  return { ...(name === undefined ? {} : { name }), text: sql, values: (params ?? []) as unknown[] };
}

/** The rows-returning query function of one connection. */
export function queryOf(client: ClientBase): Query {
  return async <R extends QueryResultRow>(sql: string, params?: readonly unknown[]) => (await client.query<R>(prepared(sql, params))).rows;
}

/** Whether an error came from the server about the statement (as opposed to the connection). */
export function isStatementError(error: unknown): boolean {
  return error instanceof pg.DatabaseError;
}

/**
 * Runs `fn` in a transaction on one pooled connection. A failure rolls back; a connection
 * that cannot even roll back is broken and is discarded rather than returned to the pool.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  fn: (query: Query, client: PoolClient) => Promise<T>,
  begin = "BEGIN",
): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query(begin);
    const result = await fn(queryOf(client), client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    try {
      await client.query("ROLLBACK");
    } catch (rollbackError) {
      broken = rollbackError as Error;
    }
    throw error;
  } finally {
    client.release(broken);
  }
}

/** `($1, $2, …), ($n, …)` for a multi-row INSERT of `rows` rows of `width` columns. */
export function valuesList(rows: number, width: number): string {
  const out: string[] = [];
  for (let r = 0; r < rows; r++) {
    const cells: string[] = [];
    for (let c = 1; c <= width; c++) cells.push(`$${r * width + c}`);
    out.push(`(${cells.join(", ")})`);
  }
  return out.join(", ");
}
