import { randomBytes } from "node:crypto";
import { readFileSync, unlinkSync } from "node:fs";
import { mkdir, open, readFile, rename, rm, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Status } from "nice-grpc-common";
import { ContinuityError } from "../errors/continuity-error.js";
import type { QueueStore } from "./queue-store.js";

/**
 * A durable store for Node: one file per key in `directory`. Each write goes to a fresh
 * temporary file that is fsynced, renamed over the old one and followed by an fsync of the
 * directory — so after a crash (of the process or the machine) a key holds either its old or
 * its new value, never a torn mix, and an acknowledged write is on disk.
 *
 * One process at a time owns a directory: the first operation creates `<directory>/.lock`
 * holding the process id, and a store in another process fails every operation with
 * FAILED_PRECONDITION / QUEUE_STORE_LOCKED while that process lives (two processes sharing
 * a queue would overwrite each other's pending writes). A lock left by a process that died is
 * taken over; the lock is removed when the process exits. Stores on one directory within one
 * process share the lock, and stream handles refuse a second handle on the same stream.
 *
 * @example
 * ```ts
 * const store = createFileQueueStore(join(appDataDir, "continuity"));
 * const replica = createReplica(client, { store });
 * ```
 */
export function createFileQueueStore(directory: string): QueueStore {
  let ready: Promise<void> | undefined;
  const ensureDirectory = (): Promise<void> => {
    ready ??= mkdir(directory, { recursive: true, mode: 0o700 }).then(() => lockDirectory(directory));
    // A refused lock is retried on the next operation: the other process may have exited.
    ready.catch(() => {
      ready = undefined;
    });
    return ready;
  };
  // Keys can hold any characters (stream names have slashes); hex keeps file names portable.
  const fileOf = (key: string): string => join(directory, `${Buffer.from(key, "utf8").toString("hex")}.json`);
  // Writes to one key are serialised so a slow older write cannot rename over a newer one.
  const chains = new Map<string, Promise<void>>();

  async function writeAtomically(key: string, value: string): Promise<void> {
    await ensureDirectory();
    const target = fileOf(key);
    const temporary = `${target}.${randomBytes(6).toString("hex")}.tmp`;
    const file = await open(temporary, "w", 0o600);
    try {
      await file.writeFile(value, "utf8");
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temporary, target);
    await syncDirectory(directory);
  }

  return {
    identity: `file:${resolve(directory)}`,
    async read(key) {
      await ensureDirectory();
      try {
        return await readFile(fileOf(key), "utf8");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw error;
      }
    },
    write(key, value) {
      const previous = chains.get(key) ?? Promise.resolve();
      const next = previous.catch(() => undefined).then(() => writeAtomically(key, value));
      chains.set(key, next);
      void next.finally(() => {
        if (chains.get(key) === next) chains.delete(key);
      }).catch(() => undefined);
      return next;
    },
    async remove(key) {
      await ensureDirectory();
      await (chains.get(key) ?? Promise.resolve()).catch(() => undefined);
      await rm(fileOf(key), { force: true });
      await syncDirectory(directory);
    },
  };
}

async function syncDirectory(directory: string): Promise<void> {
  // A rename is durable only once the directory entry is; some platforms (Windows) cannot
  // open a directory for fsync, and there the rename itself is the best available.
  let handle;
  try {
    handle = await open(directory, "r");
    await handle.sync();
  } catch {
    return;
  } finally {
    await handle?.close();
  }
}

/** Lock files this process holds, removed when it exits. */
const heldLocks = new Set<string>();
let exitHookInstalled = false;

async function lockDirectory(directory: string): Promise<void> {
  const path = join(resolve(directory), ".lock");
  if (heldLocks.has(path)) return;
  for (let attempt = 0; ; attempt += 1) {
    try {
      const file = await open(path, "wx", 0o600);
      try {
        await file.writeFile(String(process.pid), "utf8");
        await file.sync();
      } finally {
        await file.close();
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const owner = await readOwner(path);
    if (owner === process.pid) break;
    if (owner !== undefined && isAlive(owner)) {
      throw new ContinuityError({
        code: Status.FAILED_PRECONDITION,
        reason: "QUEUE_STORE_LOCKED",
        message: `the queue store ${directory} is in use by process ${owner}; give each process its own directory`,
      });
    }
    // Left by a process that died (or half-written by one): take it over, once. A second
    // failure means another process is taking it over at the same moment.
    if (attempt > 0) {
      throw new ContinuityError({ code: Status.FAILED_PRECONDITION, reason: "QUEUE_STORE_LOCKED", message: `the queue store ${directory} is being locked by another process` });
    }
    await unlink(path).catch(() => undefined);
  }
  heldLocks.add(path);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", releaseLocks);
  }
}

function releaseLocks(): void {
  for (const path of heldLocks) {
    try {
      // Only our own lock: a later process may have taken over one we lost.
      if (readFileSync(path, "utf8").trim() === String(process.pid)) unlinkSync(path);
    } catch {
      // Already gone.
    }
  }
  heldLocks.clear();
}

async function readOwner(path: string): Promise<number | undefined> {
  try {
    const text = (await readFile(path, "utf8")).trim();
    return /^[0-9]+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
