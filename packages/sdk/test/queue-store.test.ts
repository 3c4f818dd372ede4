import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { backoffDelayMs, createFileQueueStore, createMemoryQueueStore, type QueueStore } from "../src/index.js";

const directories: string[] = [];
afterEach(async () => {
  for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
});

async function fileStore(): Promise<{ store: QueueStore; directory: string }> {
  const directory = await mkdtemp(join(tmpdir(), "continuity-store-"));
  directories.push(directory);
  return { store: createFileQueueStore(join(directory, "nested")), directory: join(directory, "nested") };
}

describe.each([
  ["memory", async () => ({ store: createMemoryQueueStore() as QueueStore, directory: undefined })],
  ["file", fileStore],
])("%s queue store", (_kind, make) => {
  it("reads back what it wrote, under keys with any characters, and forgets removed keys", async () => {
    const { store } = await make();
    const key = "stream/subjects/s1/devices/d 1/subjects/s1/streams/ünïcode";
    expect(await store.read(key)).toBeUndefined();
    await store.write(key, "one");
    await store.write(key, "two");
    expect(await store.read(key)).toBe("two");
    await store.remove(key);
    await store.remove(key);
    expect(await store.read(key)).toBeUndefined();
  });

  it("keeps the last of many overlapping writes to one key", async () => {
    const { store } = await make();
    await Promise.all(Array.from({ length: 20 }, (_, index) => store.write("k", `value-${index}`)));
    expect(await store.read("k")).toBe("value-19");
  });
});

describe("file queue store", () => {
  it("leaves no temporary files behind and survives a new instance on the same directory", async () => {
    const { store, directory } = await fileStore();
    await Promise.all([store.write("a", "1"), store.write("b", "2"), store.write("a", "3")]);
    const files = await readdir(directory);
    expect(files.filter((file) => file.endsWith(".tmp"))).toEqual([]);
    // One file per key, besides the directory's process lock.
    expect(files.filter((file) => file !== ".lock")).toHaveLength(2);
    const reopened = createFileQueueStore(directory);
    expect(await reopened.read("a")).toBe("3");
    expect(await reopened.read("b")).toBe("2");
  });
});

describe("backoffDelayMs", () => {
  it("draws full jitter below an exponentially growing, capped ceiling", () => {
    const options = { baseDelayMs: 100, maxDelayMs: 1_000 };
    expect(backoffDelayMs(0, { ...options, random: () => 0.999 })).toBe(99);
    expect(backoffDelayMs(3, { ...options, random: () => 0.5 })).toBe(400);
    expect(backoffDelayMs(10, { ...options, random: () => 0.999 })).toBe(999);
    expect(backoffDelayMs(10, { ...options, random: () => 0 })).toBe(0);
  });
});
