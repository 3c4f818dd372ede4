import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  createFileQueueStore,
  createMemoryQueueStore,
  openStream,
  type ContinuityClient,
  type JsonStream,
  type MemoryQueueStore,
  type QueueStore,
  type WriteAcknowledged,
  type WriteRejected,
} from "../src/index.js";
import { openJsonStreamWithCore } from "../src/stream/json-stream.js";
import { openOpaqueStreamWithCore } from "../src/stream/opaque-stream.js";
import type { FakeStreamServer } from "./fake-stream-server.js";
import { useFakeStreamServer } from "./support/fake-stream-clients.js";

// How stream handles recover from what a long-lived device meets in the field: a server
// restored from a backup, a stream recreated under the same name, a change someone else
// already made, a handle closed while the app still waits on it.

const { cleanups, fake, clientFor } = useFakeStreamServer();

type Progress = { lesson?: number; other?: number; notes?: Record<string, string> };

async function open(client: ContinuityClient, store: QueueStore = createMemoryQueueStore(), stream = "progress"): Promise<JsonStream<Progress>> {
  const handle = await openStream<Progress>(client, { stream, create: { type: "org.example.progress", encoding: "json-merge-patch" }, store });
  cleanups.push(() => handle.close());
  return handle;
}

/** Fails the test instead of hanging it when a promise never settles. */
function within(ms: number): { signal: AbortSignal } {
  return { signal: AbortSignal.timeout(ms) };
}

/** `promise`, or a rejection when it has not settled after `ms`: a hang fails fast instead of at the test timeout. */
function orHang<T>(promise: Promise<T>, ms = 3_000): Promise<T> {
  return Promise.race([promise, sleep(ms).then(() => Promise.reject(new Error(`still pending after ${ms} ms`)))]);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("a server whose history is behind the replica", () => {
  it.each([
    { answer: "refuses the listing as VERSION_AHEAD_OF_HEAD", lenientListing: false },
    { answer: "lists nothing and reports the lower head", lenientListing: true },
  ])("re-bases on the restored server's state when it $answer, and lands new writes instead of conflicting forever", async ({ lenientListing }) => {
    const store = createMemoryQueueStore();
    const original = await fake();
    const before = await open(clientFor(original, "laptop"), store);
    for (const lesson of [1, 2, 3]) await before.update({ lesson });
    await before.settled();
    await before.close();

    // Same stream uid (the fake derives it from creation order), shorter history.
    const restored = await fake();
    restored.lenientListing = lenientListing;
    const phone = await open(clientFor(restored, "phone"));
    await phone.update({ other: 7 });
    await phone.settled();

    const after = await open(clientFor(restored, "laptop"), store);
    // Opened from the store at once; the server's word arrives with the catch-up.
    expect(after.status.confirmedVersion).toBe(3n);
    await after.refresh(within(5_000));
    expect(after.status.confirmedVersion).toBe(1n);
    expect(after.confirmedState).toEqual({ other: 7 });
    const calls = restored.appendCalls;
    await after.update({ lesson: 4 });
    await after.settled(within(5_000));
    expect(restored.headState(after.name)).toEqual({ other: 7, lesson: 4 });
    expect(after.confirmedState).toEqual({ other: 7, lesson: 4 });
    // One probe of the lost client sequence, then the write itself.
    expect(restored.appendCalls - calls).toBeLessThanOrEqual(3);
  });

  it("backs off while conflicts bring nothing new to re-base on", async () => {
    const server = await fake();
    const handle = await open(clientFor(server, "laptop"));
    server.forceConflicts = 1_000;
    const calls = server.appendCalls;
    await handle.update({ lesson: 1 });
    await sleep(500);
    // A hot loop sends hundreds here; backing off (at least 50 ms apart) sends a handful.
    expect(server.appendCalls - calls).toBeLessThan(15);
    server.forceConflicts = 0;
    handle.flush();
    await handle.settled(within(5_000));
    expect(server.headState(handle.name)).toEqual({ lesson: 1 });
  });
});

describe("a write whose effect another writer made first", () => {
  it("is reported as acknowledged with alreadyApplied, not dropped in silence", async () => {
    const server = await fake();
    const laptop = await open(clientFor(server, "laptop"));
    const phone = await open(clientFor(server, "phone"));
    await phone.update({ lesson: 4 });
    await phone.settled();

    const acknowledged: WriteAcknowledged[] = [];
    const rejected: WriteRejected[] = [];
    laptop.on("acknowledged", (event) => acknowledged.push(event));
    laptop.on("rejected", (event) => rejected.push(event));
    const id = await laptop.update((draft) => {
      draft.lesson = 4;
    });
    await laptop.settled(within(5_000));
    expect(rejected).toEqual([]);
    expect(acknowledged).toEqual([{ opId: id, version: 1n, replayed: false, alreadyApplied: true }]);
    expect(server.deltas.get(laptop.name)).toHaveLength(1);
  });
});

describe("a stored queue the handle cannot use", () => {
  it("reports writes queued for a stream that was deleted and recreated as rejected STREAM_REPLACED", async () => {
    const store = createMemoryQueueStore();
    const first = await fake();
    const before = await open(clientFor(first, "laptop"), store);
    first.down = true;
    const id = await before.update({ lesson: 1 });
    await before.close();

    const second = await fake();
    // Another stream created first gives "progress" a different uid on this server.
    await open(clientFor(second, "laptop"), createMemoryQueueStore(), "elsewhere");
    const after = await open(clientFor(second, "laptop"), store);
    const rejected: WriteRejected[] = [];
    after.on("rejected", (event) => rejected.push(event));
    // Opened from the store; the server's other uid is learnt in the background.
    await after.refresh(within(5_000));
    expect(rejected.map(({ opId, reason }) => ({ opId, reason }))).toEqual([{ opId: id, reason: "STREAM_REPLACED" }]);
    expect(after.status.pendingCount).toBe(0);
    expect(second.deltas.get(after.name)).toEqual([]);
  });

  it("refuses to open over a record in a format it cannot read, and leaves the record alone", async () => {
    const server = await fake();
    const store: MemoryQueueStore = createMemoryQueueStore();
    const handle = await open(clientFor(server, "laptop"), store);
    await handle.close();
    const key = [...store.entries.keys()].find((candidate) => candidate.startsWith("stream/"));
    const future = JSON.stringify({ format: 2, whatever: "a newer SDK wrote this" });
    await store.write(key!, future);
    await expect(open(clientFor(server, "laptop"), store)).rejects.toMatchObject({ reason: "QUEUE_RECORD_UNSUPPORTED" });
    expect(store.entries.get(key!)).toBe(future);
  });
});

describe("one stream, one queue", () => {
  it("refuses a second handle on the same stream and store until the first is closed", async () => {
    const directory = await mkdtemp(join(tmpdir(), "continuity-handles-"));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    const server = await fake();
    const client = clientFor(server, "laptop");
    const first = await open(client, createFileQueueStore(directory));
    // A second store object on the same directory reaches the same queue.
    await expect(open(client, createFileQueueStore(directory))).rejects.toMatchObject({ reason: "STREAM_ALREADY_OPEN" });
    // Other streams, and the same stream in another store, are independent.
    await open(client, createFileQueueStore(directory), "elsewhere");
    await open(client, createMemoryQueueStore());
    await first.close();
    const again = await open(client, createFileQueueStore(directory));
    expect(again.status.halted).toBeUndefined();
  });
});

describe("closing a handle", () => {
  it("rejects settled() waiters with HANDLE_CLOSED", async () => {
    const server = await fake();
    const handle = await open(clientFor(server, "laptop"));
    server.down = true;
    await handle.update({ lesson: 1 });
    const waiting = handle.settled();
    await handle.close();
    await expect(orHang(waiting)).rejects.toMatchObject({ reason: "HANDLE_CLOSED" });
    await expect(handle.settled()).rejects.toMatchObject({ reason: "HANDLE_CLOSED" });
  });
});

describe("reading state", () => {
  it("hands out frozen values, so a stray mutation cannot alter the verified replica", async () => {
    const server = await fake();
    const handle = await open(clientFor(server, "laptop"));
    await handle.update({ lesson: 1, notes: { a: "x" } });
    await handle.settled();
    // A pending write makes the optimistic state a value of its own.
    server.down = true;
    await handle.update({ lesson: 2 });
    expect(() => {
      (handle.state as Progress).lesson = 99;
    }).toThrow(TypeError);
    expect(() => {
      (handle.confirmedState.notes as Record<string, string>)["a"] = "changed";
    }).toThrow(TypeError);
    server.down = false;
    handle.flush();
    await handle.update((draft) => {
      draft.other = 1;
    });
    await handle.settled(within(5_000));
    expect(handle.confirmedState).toEqual({ lesson: 2, other: 1, notes: { a: "x" } });
    expect(server.headState(handle.name)).toEqual(handle.confirmedState);
  });
});

describe("refresh", () => {
  it("lets a caller abandon a catch-up that another caller started", async () => {
    const server = await fake();
    const client = clientFor(server, "laptop");
    const handle = await open(client);
    const listDeltas = client.streams.listDeltas.bind(client.streams);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    client.streams.listDeltas = async (request, options) => {
      await gate;
      return listDeltas(request, options);
    };
    const first = handle.refresh();
    const controller = new AbortController();
    const second = handle.refresh({ signal: controller.signal });
    controller.abort(new Error("the user went elsewhere"));
    await expect(orHang(second)).rejects.toThrow("the user went elsewhere");
    release();
    // The shared catch-up itself goes on for the caller that still waits.
    await expect(first).resolves.toBeUndefined();
  });
});

describe("this device's own write delivered before its answer", () => {
  it("is acknowledged at once and reported as acknowledged, never as remote, nor shown twice", async () => {
    const server = await fake();
    type List = { items?: string[] };
    const { handle, core } = await openJsonStreamWithCore<List>(clientFor(server, "laptop"), {
      stream: "list",
      create: { type: "org.example.list", encoding: "json-patch" },
    });
    cleanups.push(() => handle.close());
    await handle.update([{ op: "add", path: "/items", value: [] }]);
    await handle.settled(within(5_000));

    const sources: string[] = [];
    const acknowledged: WriteAcknowledged[] = [];
    handle.on("change", (change) => sources.push(change.source));
    handle.on("acknowledged", (event) => acknowledged.push(event));
    // The write commits but its answer is lost; a subscription pushes the commit meanwhile.
    server.loseAnswers = 1;
    const id = await handle.update([{ op: "add", path: "/items/-", value: "a" }]);
    for (let tries = 0; (server.deltas.get(handle.name) ?? []).length < 2 && tries < 200; tries += 1) await sleep(5);
    await core.applyRemote(server.deltas.get(handle.name)!);
    expect(handle.status.pendingCount).toBe(0);
    expect(handle.state).toEqual({ items: ["a"] });
    expect(acknowledged).toEqual([{ opId: id, version: 2n, replayed: false, alreadyApplied: false }]);
    expect(sources).not.toContain("remote");
    expect(sources).toContain("acknowledged");

    await handle.settled(within(5_000));
    expect(acknowledged).toHaveLength(1);
    expect(server.deltas.get(handle.name)).toHaveLength(2);

    // Another device's write still is remote.
    const { handle: phone } = await openJsonStreamWithCore<List>(clientFor(server, "phone"), { stream: "list" });
    cleanups.push(() => phone.close());
    await phone.update([{ op: "add", path: "/items/-", value: "b" }]);
    await phone.settled(within(5_000));
    await handle.refresh();
    expect(sources.at(-1)).toBe("remote");
    expect(handle.state).toEqual({ items: ["a", "b"] });
  });
});

describe("opaque stream echoes", () => {
  it("does not hand this handle's own writes to onDelta when they arrive before the answer", async () => {
    const server = await fake();
    const create = { type: "org.example.doc", encoding: "opaque" as const };
    const seen: { device: string; payload: number[] }[] = [];
    const { handle, core } = await openOpaqueStreamWithCore(clientFor(server, "laptop"), {
      stream: "doc",
      create,
      onDelta: (delta) => seen.push({ device: delta.device, payload: [...delta.payload] }),
    });
    cleanups.push(() => handle.close());
    server.loseAnswers = 1;
    await handle.append(new Uint8Array([1]));
    for (let tries = 0; (server.deltas.get(handle.name) ?? []).length === 0 && tries < 200; tries += 1) await sleep(5);
    // A subscription pushes the committed delta while the lost answer is being retried.
    await core.applyRemote(server.deltas.get(handle.name)!);
    await handle.settled(within(5_000));
    expect(seen).toEqual([]);

    const { handle: other } = await openOpaqueStreamWithCore(clientFor(server, "phone"), { stream: "doc", create });
    cleanups.push(() => other.close());
    await other.append(new Uint8Array([2]));
    await other.settled();
    await handle.refresh();
    expect(seen).toEqual([{ device: "subjects/s1/devices/phone", payload: [2] }]);
  });
});
