import { openDB, type IDBPDatabase } from "idb";
import { Status } from "nice-grpc-common";
import { ContinuityError, isContinuityError } from "../errors/continuity-error.js";
import type { QueueStore } from "./queue-store.js";

/** Options of `createIndexedDbQueueStore`. */
export interface IndexedDbQueueStoreOptions {
  /**
   * The IndexedDB database the store keeps its values in. Default `continuity`. One open
   * app per database: two tabs on one database would overwrite each other's queues, so give
   * each its own name (or let one tab own the data, e.g. with the Web Locks API).
   */
  readonly databaseName?: string | undefined;
}

/** The object store inside the database; values are kept out of line under their key. */
const OBJECT_STORE = "queue";
const SCHEMA_VERSION = 1;

/**
 * A durable store for browsers: one IndexedDB database (through `idb`, a small, well-kept
 * promise wrapper), one object store of string values by key. Each write is its own
 * readwrite transaction asking for `strict` durability, and the promise resolves when the
 * transaction has committed — so a write is atomic (IndexedDB commits a transaction whole or
 * not at all) and, once acknowledged, survives a reload or a closed tab.
 *
 * The database opens on first use and stays open while the page lives. A failure rejects
 * with a `ContinuityError` of reason `QUEUE_STORE_FAILED` naming the database, the key and
 * the browser's error (metadata `database` and `error`): RESOURCE_EXHAUSTED when the
 * browser's quota is used up (`QuotaExceededError`), FAILED_PRECONDITION otherwise (storage
 * blocked, private mode without IndexedDB, a newer schema from another SDK version). A value
 * that is not a string (written by other code) rejects with DATA_LOSS / `QUEUE_STORE_CORRUPT`.
 *
 * It imports no Node built-ins, so it is in both entries of the package; in Node it needs an
 * IndexedDB implementation on `globalThis` (the SDK's tests use `fake-indexeddb`).
 *
 * @example
 * ```ts
 * const store = createIndexedDbQueueStore({ databaseName: "continuity-ana" });
 * const replica = await createReplica(client, { store });
 * ```
 */
export function createIndexedDbQueueStore(options: IndexedDbQueueStoreOptions = {}): QueueStore {
  const databaseName = options.databaseName ?? "continuity";
  let database: Promise<IDBPDatabase> | undefined;
  const open = (): Promise<IDBPDatabase> => {
    database ??= openDB(databaseName, SCHEMA_VERSION, {
      upgrade(db) {
        if (!db.objectStoreNames.contains(OBJECT_STORE)) db.createObjectStore(OBJECT_STORE);
      },
      // Another tab upgrading the schema: let it, and open again on the next operation.
      blocking() {
        void database?.then((db) => db.close());
        database = undefined;
      },
    });
    // A failed open is retried on the next operation: storage may have been unblocked.
    database.catch(() => {
      database = undefined;
    });
    return database;
  };

  async function run<T>(operation: "read" | "write" | "remove", key: string, work: (db: IDBPDatabase) => Promise<T>): Promise<T> {
    try {
      return await work(await open());
    } catch (error) {
      throw storeFailure(databaseName, operation, key, error);
    }
  }

  return {
    identity: `indexeddb:${databaseName}`,
    async read(key) {
      const value: unknown = await run("read", key, (db) => db.get(OBJECT_STORE, key));
      if (value === undefined || typeof value === "string") return value;
      throw new ContinuityError({
        code: Status.DATA_LOSS,
        reason: "QUEUE_STORE_CORRUPT",
        message: `the IndexedDB queue store ${databaseName} holds something other than a value of this store under "${key}"`,
        metadata: { database: databaseName },
      });
    },
    write(key, value) {
      return run("write", key, async (db) => {
        const transaction = db.transaction(OBJECT_STORE, "readwrite", { durability: "strict" });
        await Promise.all([transaction.store.put(value, key), transaction.done]);
      });
    },
    remove(key) {
      return run("remove", key, async (db) => {
        const transaction = db.transaction(OBJECT_STORE, "readwrite", { durability: "strict" });
        await Promise.all([transaction.store.delete(key), transaction.done]);
      });
    },
  };
}

/** A browser storage failure as a `ContinuityError` that says what failed, where and why. */
function storeFailure(databaseName: string, operation: "read" | "write" | "remove", key: string, error: unknown): ContinuityError {
  if (isContinuityError(error)) return error;
  const name = error instanceof Error || (typeof error === "object" && error !== null && "name" in error) ? String((error as { name: unknown }).name) : "Error";
  const why = error instanceof Error ? error.message : String(error);
  return new ContinuityError({
    code: name === "QuotaExceededError" ? Status.RESOURCE_EXHAUSTED : Status.FAILED_PRECONDITION,
    reason: "QUEUE_STORE_FAILED",
    message: `the IndexedDB queue store ${databaseName} could not ${operation} "${key}": ${name}: ${why}`,
    metadata: { database: databaseName, error: name },
    cause: error,
  });
}
