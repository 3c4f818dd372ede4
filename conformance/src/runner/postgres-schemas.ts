import { randomBytes } from "node:crypto";
import pg from "pg";

/**
 * Spawn mode with a PostgreSQL store. The runner contract gives each spawned server a data
 * directory of its own, and a wiped one for a fresh store; a server that keeps its state in
 * PostgreSQL (`CONTINUITY_STORE=postgres://…`, as the reference server does) needs the same
 * from its schema. So each data directory gets its own schema, named in the URL's `schema`
 * parameter, and every schema the run made is dropped at the end.
 */
export interface SchemaAllocator {
  /** The store URL for a server on `dataDir`: the same schema for the same directory. */
  urlFor(dataDir: string): string;
  /** Drops every schema handed out. */
  dropAll(): Promise<void>;
}

/** An allocator when `store` is a postgres:// URL; undefined for any other store. */
export function postgresSchemas(store: string | undefined): SchemaAllocator | undefined {
  if (store === undefined || !/^postgres(ql)?:\/\//.test(store)) return undefined;
  const base = new URL(store);
  const prefix = base.searchParams.get("schema") ?? "conformance";
  base.searchParams.delete("schema");
  const byDir = new Map<string, string>();
  return {
    urlFor(dataDir) {
      let schema = byDir.get(dataDir);
      if (schema === undefined) {
        schema = `${prefix}_${randomBytes(6).toString("hex")}`;
        byDir.set(dataDir, schema);
      }
      const url = new URL(base.toString());
      url.searchParams.set("schema", schema);
      return url.toString();
    },
    async dropAll() {
      if (byDir.size === 0) return;
      const client = new pg.Client({ connectionString: base.toString() });
      await client.connect();
      try {
        for (const schema of byDir.values()) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
      byDir.clear();
    },
  };
}
