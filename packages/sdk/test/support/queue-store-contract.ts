import { describe, expect, it } from "vitest";
import type { QueueStore } from "../../src/index.js";

/** How the contract gets stores of one backend. */
export interface QueueStoreBackend {
  /** A store on fresh, empty data. */
  readonly create: () => Promise<QueueStore>;
  /**
   * A second store on the same data as `store` (a restart of the app); absent for backends
   * whose data lives only as long as the store object (memory).
   */
  readonly reopen?: ((store: QueueStore) => Promise<QueueStore>) | undefined;
}

/**
 * What every `QueueStore` promises (queue-store.ts), run against each backend — memory,
 * file, IndexedDB — so a new backend is held to the same rules by the same cases.
 */
export function queueStoreContract(name: string, backend: QueueStoreBackend): void {
  describe(`${name} queue store (QueueStore contract)`, () => {
    it("reads back what it wrote, under keys with any characters, and forgets removed keys", async () => {
      const store = await backend.create();
      const key = "stream/subjects/s1/devices/d 1/subjects/s1/streams/ünïcode";
      expect(await store.read(key)).toBeUndefined();
      await store.write(key, "one");
      await store.write(key, "two");
      expect(await store.read(key)).toBe("two");
      await store.remove(key);
      await store.remove(key);
      expect(await store.read(key)).toBeUndefined();
    });

    it("keeps values of any content and size exactly, and keys apart", async () => {
      const store = await backend.create();
      const long = `stream/${"d".repeat(63)}/${"s".repeat(900)}`;
      const value = JSON.stringify({ text: "line\nbreak \u0000 \u{1F600}", big: "x".repeat(200_000) });
      await store.write(long, value);
      await store.write("a", "");
      await store.write("A", "upper");
      expect(await store.read(long)).toBe(value);
      expect(await store.read("a")).toBe("");
      expect(await store.read("A")).toBe("upper");
    });

    it("keeps the last of many overlapping writes to one key", async () => {
      const store = await backend.create();
      await Promise.all(Array.from({ length: 20 }, (_, index) => store.write("k", `value-${index}`)));
      expect(await store.read("k")).toBe("value-19");
    });

    it("names its data with the same identity as another store on the same data", async () => {
      const store = await backend.create();
      const other = await backend.create();
      if (store.identity !== undefined) expect(other.identity).not.toBe(store.identity);
      if (backend.reopen !== undefined) expect((await backend.reopen(store)).identity).toBe(store.identity);
    });

    const reopen = backend.reopen;
    if (reopen === undefined) return;
    it("hands a store on the same data what an acknowledged write stored", async () => {
      const store = await backend.create();
      await Promise.all([store.write("a", "1"), store.write("b", "2"), store.write("a", "3")]);
      await store.write("gone", "x");
      await store.remove("gone");
      const reopened = await reopen(store);
      expect(await reopened.read("a")).toBe("3");
      expect(await reopened.read("b")).toBe("2");
      expect(await reopened.read("gone")).toBeUndefined();
    });
  });
}
