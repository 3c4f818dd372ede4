/**
 * Where a device keeps what must survive a restart: each stream's pending writes, the last
 * acknowledged client sequence, the confirmed replica state, the subscription cursor, and the
 * session (subject and device names) a cold start opens with when the server is unreachable.
 * Implementations: `createMemoryQueueStore`, `createFileQueueStore` (Node) and
 * `createIndexedDbQueueStore` (browsers), all held to one contract suite.
 * Values are opaque strings to the store; a write must be atomic (a crash leaves the old or
 * the new value, never a torn one) and durable once the promise resolves.
 */
export interface QueueStore {
  /** The value stored under `key`, or undefined. */
  read(key: string): Promise<string | undefined>;
  /** Replaces the value under `key` atomically and durably. */
  write(key: string, value: string): Promise<void>;
  /** Removes `key`; removing a missing key is not an error. */
  remove(key: string): Promise<void>;
  /**
   * Names the data behind the store, when two store objects can reach the same data (two
   * file stores on one directory). Stream handles use it to refuse a second handle on a
   * stream whose queue is already open; without it, the store object itself is compared.
   */
  readonly identity?: string | undefined;
}

/** An in-memory `QueueStore` whose contents tests can inspect. */
export interface MemoryQueueStore extends QueueStore {
  /** Everything stored, by key. */
  readonly entries: ReadonlyMap<string, string>;
}

/**
 * A store that lives as long as the process: right for tests and short-lived tools. Pending
 * writes are lost on exit; use `createFileQueueStore` (Node) or `createIndexedDbQueueStore`
 * (browsers) to keep them.
 *
 * @example
 * ```ts
 * const store = createMemoryQueueStore();
 * const progress = await openStream(client, { stream: "course-42-progress", store });
 * console.log([...store.entries.keys()]);
 * ```
 */
export function createMemoryQueueStore(): MemoryQueueStore {
  const entries = new Map<string, string>();
  return {
    entries,
    read: (key) => Promise.resolve(entries.get(key)),
    write: (key, value) => {
      entries.set(key, value);
      return Promise.resolve();
    },
    remove: (key) => {
      entries.delete(key);
      return Promise.resolve();
    },
  };
}
