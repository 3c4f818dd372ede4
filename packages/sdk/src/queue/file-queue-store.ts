import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import type { QueueStore } from "./queue-store.js";

/**
 * A durable store for Node: one file per key in `directory`. Each write goes to a fresh
 * temporary file that is fsynced, renamed over the old one and followed by an fsync of the
 * directory — so after a crash (of the process or the machine) a key holds either its old or
 * its new value, never a torn mix, and an acknowledged write is on disk.
 *
 * @example
 * ```ts
 * const store = createFileQueueStore(join(appDataDir, "continuity"));
 * const replica = createReplica(client, { store });
 * ```
 */
export function createFileQueueStore(directory: string): QueueStore {
  let ready: Promise<void> | undefined;
  const ensureDirectory = (): Promise<void> => (ready ??= mkdir(directory, { recursive: true, mode: 0o700 }).then(() => undefined));
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
    async read(key) {
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
