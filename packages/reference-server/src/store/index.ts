/** The store contract and its SQLite and PostgreSQL implementations; see `types.ts` for the conventions. */
export type * from "./types.js";
export type * from "./portability-types.js";
export type * from "./replica-state-types.js";
export { SubjectHeldError } from "./replica-state-types.js";
export { Encoding, Policy } from "./types.js";
export { createSqliteStore } from "./sqlite/sqlite-store.js";
export type { SqliteStore, SqliteStoreOptions } from "./sqlite/sqlite-store.js";
export { createPostgresStore } from "./postgres/pg-store.js";
export type { PostgresStore, PostgresStoreOptions } from "./postgres/pg-store.js";
