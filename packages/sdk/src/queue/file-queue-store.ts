import { createHash, randomBytes } from "node:crypto";
import { readFileSync, unlinkSync } from "node:fs";
import { mkdir, open, readFile, rename, rm, unlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import { Status } from "nice-grpc-common";
import { ContinuityError, isContinuityError } from "../errors/continuity-error.js";
import type { QueueStore } from "./queue-store.js";

/**
 * A durable store for Node: one file per key in `directory`. Each write goes to a fresh
 * temporary file that is fsynced, renamed over the old one and followed by an fsync of the
 * directory — so after a crash (of the process or the machine) a key holds either its old or
 * its new value, never a torn mix, and an acknowledged write is on disk.
 *
 * A key's file is named by the SHA-256 of the key (`<64 hex>.json`), whatever the key's
 * length or characters, and holds the key itself beside the value, so a file always says
 * what it is. Files of the earlier layout (the key hex-encoded into the name) are still read,
 * and replaced by the new layout on the next write of their key.
 *
 * One process at a time owns a directory: the first operation creates `<directory>/.lock`
 * holding the process id, and a store in another process fails every operation with
 * FAILED_PRECONDITION / QUEUE_STORE_LOCKED while that process lives (two processes sharing
 * a queue would overwrite each other's pending writes). A lock left by a process that died is
 * taken over; the lock is removed when the process exits. Stores on one directory within one
 * process share the lock, and stream handles refuse a second handle on the same stream.
 *
 * A file system failure rejects with a `ContinuityError` of reason `QUEUE_STORE_FAILED`
 * whose message names the directory, the key and the system error, with metadata
 * `directory` and `errno` (e.g. `ENOSPC`): RESOURCE_EXHAUSTED when the disk or the process's
 * file table is full, FAILED_PRECONDITION otherwise (no permission, a read-only file system,
 * a path that is not a directory). A file whose content is not a value of this store (edited
 * by hand, or by another program) rejects with DATA_LOSS / `QUEUE_STORE_CORRUPT`.
 *
 * @example
 * ```ts
 * const store = createFileQueueStore(join(appDataDir, "continuity"));
 * const replica = await createReplica(client, { store });
 * ```
 */
export function createFileQueueStore(directory: string): QueueStore {
  let ready: Promise<void> | undefined;
  const ensureDirectory = (): Promise<void> => {
    ready ??= mkdir(directory, { recursive: true, mode: 0o700 })
      .then(() => lockDirectory(directory))
      .catch((error: unknown) => {
        throw storeFailure(directory, "open", undefined, error);
      });
    // A refused lock is retried on the next operation: the other process may have exited.
    ready.catch(() => {
      ready = undefined;
    });
    return ready;
  };
  // A fixed-length name, because file systems limit a name to 255 bytes and keys (device
  // id plus stream name) are longer; the key is kept inside the file instead.
  const fileOf = (key: string): string => join(directory, `${createHash("sha256").update(key, "utf8").digest("hex")}.json`);
  // The layout before: the key hex-encoded into the name. Only read, and removed on write.
  const legacyFileOf = (key: string): string => join(directory, `${Buffer.from(key, "utf8").toString("hex")}.json`);
  // Writes to one key are serialised so a slow older write cannot rename over a newer one.
  const chains = new Map<string, Promise<void>>();

  async function writeAtomically(key: string, value: string): Promise<void> {
    await ensureDirectory();
    const target = fileOf(key);
    const temporary = `${target}.${randomBytes(6).toString("hex")}.tmp`;
    try {
      const file = await open(temporary, "w", 0o600);
      try {
        await file.writeFile(JSON.stringify({ key, value } satisfies StoredFile), "utf8");
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporary, target);
    } catch (error) {
      await rm(temporary, { force: true }).catch(() => undefined);
      throw storeFailure(directory, "write", key, error);
    }
    await removeLegacy(key);
    await syncDirectory(directory);
  }

  async function removeLegacy(key: string): Promise<void> {
    try {
      await unlink(legacyFileOf(key));
    } catch (error) {
      // Absent, or a key too long to ever have had a file of that layout.
      if (!isMissing(error)) throw storeFailure(directory, "remove", key, error);
    }
  }

  async function readFileOrUndefined(path: string, key: string): Promise<string | undefined> {
    try {
      return await readFile(path, "utf8");
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw storeFailure(directory, "read", key, error);
    }
  }

  return {
    identity: `file:${resolve(directory)}`,
    async read(key) {
      await ensureDirectory();
      const path = fileOf(key);
      const text = await readFileOrUndefined(path, key);
      if (text === undefined) return readFileOrUndefined(legacyFileOf(key), key);
      return valueOf(text, key, path);
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
      try {
        await rm(fileOf(key), { force: true });
      } catch (error) {
        throw storeFailure(directory, "remove", key, error);
      }
      await removeLegacy(key);
      await syncDirectory(directory);
    },
  };
}

/** What one file of the store holds. */
interface StoredFile {
  readonly key: string;
  readonly value: string;
}

function valueOf(text: string, key: string, path: string): string {
  let stored: Partial<StoredFile> | undefined;
  try {
    stored = JSON.parse(text) as Partial<StoredFile>;
  } catch {
    stored = undefined;
  }
  if (stored === undefined || typeof stored.value !== "string" || stored.key !== key) {
    throw new ContinuityError({
      code: Status.DATA_LOSS,
      reason: "QUEUE_STORE_CORRUPT",
      message: `the queue store file ${path} does not hold the value of "${key}"; it was changed outside the SDK`,
      metadata: { path },
    });
  }
  return stored.value;
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENAMETOOLONG";
}

const FULL = new Set(["ENOSPC", "EDQUOT", "EMFILE", "ENFILE"]);

/** A file system failure as a `ContinuityError` that says what failed, where and why. */
function storeFailure(directory: string, operation: "open" | "read" | "write" | "remove", key: string | undefined, error: unknown): ContinuityError {
  if (isContinuityError(error)) return error;
  const errno = (error as NodeJS.ErrnoException).code ?? "UNKNOWN";
  const what = key === undefined ? `the directory` : `"${key}"`;
  const why = error instanceof Error ? error.message : String(error);
  return new ContinuityError({
    code: FULL.has(errno) ? Status.RESOURCE_EXHAUSTED : Status.FAILED_PRECONDITION,
    reason: "QUEUE_STORE_FAILED",
    message: `the queue store ${directory} could not ${operation} ${what}: ${why}`,
    metadata: { directory, errno },
    cause: error,
  });
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
