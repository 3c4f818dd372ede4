import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createFileQueueStore } from "../src/index.js";

// The lock that keeps two processes from sharing one file queue store. Other processes are
// stood in for by real child processes, alive or exited, whose pids the lock file names.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function directory(): Promise<string> {
  const path = await mkdtemp(join(tmpdir(), "continuity-lock-"));
  cleanups.push(() => rm(path, { recursive: true, force: true }));
  return path;
}

/** A process that stays alive until the test ends. */
function liveProcess(): number {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  cleanups.push(() => {
    child.kill();
  });
  return child.pid!;
}

/** The pid of a process that has exited. */
async function exitedProcess(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid!;
}

describe("file queue store lock", () => {
  it("takes the directory's lock on first use, with this process's id", async () => {
    const path = await directory();
    const store = createFileQueueStore(path);
    await store.write("k", "v");
    expect((await readFile(join(path, ".lock"), "utf8")).trim()).toBe(String(process.pid));
    // Another store in this process shares the lock.
    expect(await createFileQueueStore(path).read("k")).toBe("v");
  });

  it("refuses a directory another live process holds, for reads and writes alike", async () => {
    const path = await directory();
    await writeFile(join(path, ".lock"), String(liveProcess()));
    const store = createFileQueueStore(path);
    await expect(store.read("k")).rejects.toMatchObject({ reason: "QUEUE_STORE_LOCKED" });
    await expect(store.write("k", "v")).rejects.toMatchObject({ reason: "QUEUE_STORE_LOCKED" });
  });

  it("takes over a lock left by a process that exited", async () => {
    const path = await directory();
    await writeFile(join(path, ".lock"), String(await exitedProcess()));
    const store = createFileQueueStore(path);
    await store.write("k", "v");
    expect(await store.read("k")).toBe("v");
    expect((await readFile(join(path, ".lock"), "utf8")).trim()).toBe(String(process.pid));
  });
});
