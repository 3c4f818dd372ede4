/** The store contract and its SQLite implementation; see `types.ts` for the conventions. */
export type * from "./types.js";
export type * from "./portability-types.js";
export { Encoding, Policy } from "./types.js";
export { createSqliteStore } from "./sqlite/sqlite-store.js";
export type { SqliteStore, SqliteStoreOptions } from "./sqlite/sqlite-store.js";
