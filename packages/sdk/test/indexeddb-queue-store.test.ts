import "fake-indexeddb/auto";
import { openDB } from "idb";
import { describe, expect, it } from "vitest";
import { createIndexedDbQueueStore, Status, type QueueStore } from "../src/core.js";
import { queueStoreContract } from "./support/queue-store-contract.js";

// The IndexedDB store against fake-indexeddb, an in-memory IndexedDB that follows the W3C
// spec (it passes the W3C web-platform tests), under the same contract as the other stores.

let databases = 0;
const names = new Map<QueueStore, string>();
queueStoreContract("indexeddb", {
  create() {
    databases += 1;
    const databaseName = `continuity-test-${databases}`;
    const store = createIndexedDbQueueStore({ databaseName });
    names.set(store, databaseName);
    return Promise.resolve(store);
  },
  reopen: (store) => Promise.resolve(createIndexedDbQueueStore({ databaseName: names.get(store)! })),
});

describe("indexeddb queue store", () => {
  it("refuses a value it did not write instead of handing it out", async () => {
    const store = createIndexedDbQueueStore({ databaseName: "continuity-foreign" });
    await store.write("k", "v");
    const db = await openDB("continuity-foreign", 1);
    await db.put("queue", { not: "a string" }, "k");
    db.close();
    await expect(store.read("k")).rejects.toMatchObject({ code: Status.DATA_LOSS, reason: "QUEUE_STORE_CORRUPT" });
  });

  it("fails with an error that names the database and the browser's error when the database cannot open", async () => {
    // A database at a higher version than this SDK's schema: opening it at version 1 fails.
    (await openDB("continuity-newer", 5)).close();
    const store = createIndexedDbQueueStore({ databaseName: "continuity-newer" });
    const failure = await store.write("k", "v").catch((error: unknown) => error);
    expect(failure).toMatchObject({ name: "ContinuityError", code: Status.FAILED_PRECONDITION, reason: "QUEUE_STORE_FAILED", metadata: { database: "continuity-newer", error: "VersionError" } });
    expect((failure as Error).message).toContain("continuity-newer");
  });
});
