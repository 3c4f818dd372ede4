import { join } from "node:path";
import { createSqliteStore } from "../store/sqlite/sqlite-store.js";
import type { Store } from "../store/types.js";
import { openTestPostgresStore } from "./postgres.js";

/** Which backend the integration tests run on: `CONTINUITY_TEST_STORE=postgres`, else SQLite. */
export type TestStoreKind = "sqlite" | "postgres";

/** The backend chosen for this test run. */
export function testStoreKind(): TestStoreKind {
  const kind = process.env["CONTINUITY_TEST_STORE"] ?? "sqlite";
  if (kind !== "sqlite" && kind !== "postgres") throw new Error(`CONTINUITY_TEST_STORE must be sqlite or postgres, not ${kind}`);
  return kind;
}

/**
 * A fresh store for a test server: a SQLite file in `dataDir`, or a fresh schema on the test
 * PostgreSQL (dropped by `close`). The same integration tests run on either.
 */
export async function openTestStore(dataDir: string, kind: TestStoreKind = testStoreKind()): Promise<{ store: Store; close(): Promise<void> }> {
  if (kind === "postgres") return openTestPostgresStore();
  const store = createSqliteStore({ path: join(dataDir, "continuity.sqlite") });
  return { store, close: () => store.close() };
}
