import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { backoffDelayMs, createFileQueueStore, createMemoryQueueStore, Status, type QueueStore } from "../src/index.js";
import { queueStoreContract } from "./support/queue-store-contract.js";

const directories: string[] = [];
afterEach(async () => {
  for (const directory of directories.splice(0)) await rm(directory, { recursive: true, force: true });
});

async function fileStore(): Promise<{ store: QueueStore; directory: string }> {
  const directory = await mkdtemp(join(tmpdir(), "continuity-store-"));
  directories.push(directory);
  return { store: createFileQueueStore(join(directory, "nested")), directory: join(directory, "nested") };
}

const fileStores = new Map<QueueStore, string>();
queueStoreContract("memory", { create: () => Promise.resolve(createMemoryQueueStore()) });
queueStoreContract("file", {
  async create() {
    const { store, directory } = await fileStore();
    fileStores.set(store, directory);
    return store;
  },
  reopen: (store) => Promise.resolve(createFileQueueStore(fileStores.get(store)!)),
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

describe("file queue store layout", () => {
  // The key of the README's own example: a device id and a stream name of ordinary length.
  const readmeKey = "stream/subjects/01jd8k2m3n4p5q6r7s8t9v0w1x/devices/ana-laptop-7f3a/subjects/01jd8k2m3n4p5q6r7s8t9v0w1x/streams/intro-to-sql-progress";

  it("stores keys of any length under a fixed-length name, with the key inside the file", async () => {
    const { store, directory } = await fileStore();
    const long = `stream/${"d".repeat(63)}/${"s".repeat(900)}`;
    await store.write(readmeKey, "readme");
    await store.write(long, "long");
    expect(await store.read(readmeKey)).toBe("readme");
    expect(await store.read(long)).toBe("long");
    const files = (await readdir(directory)).filter((file) => file !== ".lock").sort();
    expect(files).toHaveLength(2);
    for (const file of files) expect(file).toMatch(/^[0-9a-f]{64}\.json$/);
    const contents = await Promise.all(files.map(async (file) => JSON.parse(await readFile(join(directory, file), "utf8")) as unknown));
    expect(contents).toEqual(expect.arrayContaining([{ key: readmeKey, value: "readme" }, { key: long, value: "long" }]));
  });

  it("reads a key of the earlier hex-named layout, and moves it to the new one on the next write", async () => {
    const { store, directory } = await fileStore();
    await store.read("warm-up");
    const key = "cursor/subjects/s1/devices/d1";
    const legacy = join(directory, `${Buffer.from(key, "utf8").toString("hex")}.json`);
    await writeFile(legacy, "old value", "utf8");
    expect(await store.read(key)).toBe("old value");
    await store.write(key, "new value");
    expect(await store.read(key)).toBe("new value");
    expect((await readdir(directory)).filter((file) => file !== ".lock")).toHaveLength(1);
    await writeFile(legacy, "stale", "utf8");
    await store.remove(key);
    expect(await store.read(key)).toBeUndefined();
    expect((await readdir(directory)).filter((file) => file !== ".lock")).toEqual([]);
  });

  it("fails with an error that says what, where and why, not a bare code", async () => {
    const { directory } = await fileStore();
    await writeFile(join(directory, "..", "not-a-directory"), "", "utf8");
    const store = createFileQueueStore(join(directory, "..", "not-a-directory", "queue"));
    const failure = await store.write(readmeKey, "x").catch((error: unknown) => error);
    expect(failure).toMatchObject({
      name: "ContinuityError",
      code: Status.FAILED_PRECONDITION,
      reason: "QUEUE_STORE_FAILED",
      metadata: { errno: "ENOTDIR" },
    });
    expect((failure as Error).message).toContain("not-a-directory");
    expect((failure as Error).message).toContain("ENOTDIR");
  });

  it("refuses a file changed outside the SDK instead of handing out someone else's value", async () => {
    const { store, directory } = await fileStore();
    await store.write("a", "1");
    const [file] = (await readdir(directory)).filter((name) => name !== ".lock");
    await writeFile(join(directory, file!), JSON.stringify({ key: "b", value: "2" }), "utf8");
    await expect(store.read("a")).rejects.toMatchObject({ code: Status.DATA_LOSS, reason: "QUEUE_STORE_CORRUPT" });
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
