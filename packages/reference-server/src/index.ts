// The reference server as a library: everything needed to embed it in another process
// (tests, demos, a custom main) without reaching into its folders. `src/main.ts` is the
// command line built on exactly these exports.
export { createContinuityServer, IMPLEMENTATION } from "./server.js";
export type { ContinuityServer, ContinuityServerOptions } from "./server.js";
export { createPostgresStore, createSqliteStore } from "./store/index.js";
export type { PostgresStore, PostgresStoreOptions, SqliteStore, SqliteStoreOptions, Store } from "./store/index.js";
export { createTokenAuthority, ASSERTION_TYP } from "./auth/token-authority.js";
export type { SigningKeySource, TokenAuthority, TokenAuthorityOptions } from "./auth/token-authority.js";
export { createPlatformRegistry, ensureDevPlatforms, loadPlatformsFile } from "./auth/platforms.js";
export type { DevPlatforms, PlatformConfig, PlatformRegistry } from "./auth/platforms.js";
export type { AuthContext, Scope } from "./auth/context.js";
export { createServerMetrics } from "./ops/metrics.js";
export type { ServerMetrics } from "./ops/metrics.js";
