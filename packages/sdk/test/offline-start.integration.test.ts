import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  createAssertionTokenProvider,
  createContinuityClient,
  createFileQueueStore,
  createReplica,
  openStream,
  Status,
  type ContinuityClient,
  type ContinuityError,
  type Replica,
  type WriteRejected,
} from "../src/index.js";
import type { Delta } from "../src/gen/continuity/v1/stream_service.js";
import { deviceClient, startReferenceServer, type RunningServer } from "./support/reference-server.js";
import { waitFor } from "./support/wait.js";

// Offline first, over real connections: a device that was online once starts again with the
// server down, reads and writes at once from its store, and when the server comes up (on the
// same address) signs in, finds its streams and flushes every queued write exactly once.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

type Course = { lesson?: number };
type Notes = { title?: string; count?: number; tag?: string };
const create = { type: "org.example.course-progress" } as const;
const notesSpec = { type: "org.example.notes" } as const;

/**
 * Clients of the device that goes offline redial a server that was down within half a second
 * (the SDK's default allows grpc-js 10 s), so the tests do not wait for a reconnect timer.
 */
const quickRedial = { channelOptions: { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 500 } };

function track<T extends ContinuityClient | Replica>(value: T): T {
  cleanups.push(() => ("device" in value ? value.close() : (value as ContinuityClient).close()));
  return value;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

async function allDeltas(client: ContinuityClient, stream: string): Promise<Delta[]> {
  const page = await client.streams.listDeltas({ stream, afterVersion: 0n, pageSize: 100 });
  return page.deltas;
}

/** A server that ran once (so the device has a session and records), then went down. */
async function serverThatWentDown(): Promise<{ port: number; dataDir: string; down: RunningServer; storeDir: string }> {
  const port = await freePort();
  const server = await startReferenceServer({ port });
  const storeDir = await mkdtemp(join(tmpdir(), "continuity-offline-"));
  cleanups.push(() => rm(storeDir, { recursive: true, force: true }));
  cleanups.push(() => server.dispose());
  return { port, dataDir: server.dataDir, down: server, storeDir };
}

describe("a cold start with the server down", () => {
  it("opens a replica from its store at once, reads and writes, and flushes each write exactly once when the server comes up", async () => {
    const { port, dataDir, down, storeDir } = await serverThatWentDown();
    const address = `127.0.0.1:${port}`;

    // Online once: the laptop writes lesson 1; the phone creates the notes stream.
    const firstRun = deviceClient(address, down.platformA, "ana", "laptop", quickRedial);
    const online = await createReplica(firstRun, { store: createFileQueueStore(storeDir) });
    const course = await online.openStream<Course>({ stream: "course-1", create });
    await course.update({ lesson: 1 });
    await online.settled({ signal: AbortSignal.timeout(10_000) });
    await online.close();
    firstRun.close();
    const phone = track(deviceClient(address, down.platformA, "ana", "phone"));
    const phoneNotes = await openStream<Notes>(phone, { stream: "notes", create: notesSpec });
    await phoneNotes.update({ title: "groceries", count: 5 });
    await phoneNotes.settled({ signal: AbortSignal.timeout(10_000) });
    await phoneNotes.close();
    await down.stop();

    // Cold start, server down: everything below happens without a single answer.
    const startedAt = Date.now();
    const laptop = track(deviceClient(address, down.platformA, "ana", "laptop", quickRedial));
    const replica = track(await createReplica(laptop, { store: createFileQueueStore(storeDir) }));
    const offlineCourse = await replica.openStream<Course>({ stream: "course-1", create });
    expect(offlineCourse.state).toEqual({ lesson: 1 });
    expect(offlineCourse.status).toMatchObject({ connected: false, confirmedVersion: 1n, pendingCount: 0 });
    await offlineCourse.update((draft) => {
      draft.lesson = (draft.lesson ?? 0) + 1;
    });
    // A stream this device never opened, which the phone created meanwhile: opened empty from
    // its create spec, to be found on the server later.
    const offlineNotes = await replica.openStream<Notes>({ stream: "notes", create: notesSpec });
    expect(offlineNotes.state).toEqual({});
    expect(offlineNotes.uid).toBe("");
    await offlineNotes.update({ tag: "offline" });
    expect(offlineCourse.state).toEqual({ lesson: 2 });
    expect(offlineCourse.status.pendingCount).toBe(1);
    expect(offlineNotes.state).toEqual({ tag: "offline" });
    expect(Date.now() - startedAt).toBeLessThan(3_000);
    expect(replica.connected).toBe(false);

    // The app is closed and started again, still offline: the queued writes are in the store.
    await replica.close();
    laptop.close();
    const again = track(deviceClient(address, down.platformA, "ana", "laptop", quickRedial));
    const secondStart = track(await createReplica(again, { store: createFileQueueStore(storeDir) }));
    const courseAgain = await secondStart.openStream<Course>({ stream: "course-1", create });
    const notesAgain = await secondStart.openStream<Notes>({ stream: "notes", create: notesSpec });
    expect(courseAgain.state).toEqual({ lesson: 2 });
    expect(notesAgain.state).toEqual({ tag: "offline" });
    expect(notesAgain.status.pendingCount).toBe(1);
    // A change made as a function is re-run on the server's state once it is known.
    await notesAgain.update((draft) => {
      draft.count = (draft.count ?? 0) + 1;
    });
    expect(notesAgain.state).toEqual({ tag: "offline", count: 1 });
    const rejected: WriteRejected[] = [];
    notesAgain.on("rejected", (event) => rejected.push(event));

    // The server comes back on the same address.
    const up = await startReferenceServer({ dataDir, port });
    cleanups.push(() => up.stop());
    await secondStart.whenConnected({ signal: AbortSignal.timeout(20_000) });
    await secondStart.settled({ signal: AbortSignal.timeout(20_000) });

    expect(courseAgain.status).toMatchObject({ connected: true, pendingCount: 0, confirmedVersion: 2n });
    expect(courseAgain.confirmedState).toEqual({ lesson: 2 });
    // The stored patch was applied over the phone's state, and the function re-run on it:
    // its count plus one, not 1.
    expect(notesAgain.uid).not.toBe("");
    expect(notesAgain.confirmedState).toEqual({ title: "groceries", count: 6, tag: "offline" });
    expect(rejected).toEqual([]);
    const reader = track(deviceClient(address, up.platformA, "ana", "phone"));
    const courseDeltas = await allDeltas(reader, courseAgain.name);
    expect(courseDeltas.map((delta) => [delta.version, delta.device.split("/").at(-1), delta.clientSequence])).toEqual([
      [1n, "laptop", 1n],
      [2n, "laptop", 2n],
    ]);
    const notesDeltas = await allDeltas(reader, notesAgain.name);
    expect(notesDeltas.map((delta) => [delta.version, delta.device.split("/").at(-1)])).toEqual([
      [1n, "phone"],
      [2n, "laptop"],
      [3n, "laptop"],
    ]);
  });

  it("opens a stream handle without a replica from its store, and flushes once the server is there", async () => {
    const { port, dataDir, down, storeDir } = await serverThatWentDown();
    const address = `127.0.0.1:${port}`;
    const firstRun = deviceClient(address, down.platformA, "ben", "tablet", quickRedial);
    const first = await openStream<Course>(firstRun, { stream: "course-2", create, store: createFileQueueStore(storeDir) });
    await first.update({ lesson: 3 });
    await first.settled({ signal: AbortSignal.timeout(10_000) });
    await first.close();
    firstRun.close();
    await down.stop();

    const tablet = track(deviceClient(address, down.platformA, "ben", "tablet", quickRedial));
    const handle = await openStream<Course>(tablet, { stream: "course-2", store: createFileQueueStore(storeDir) });
    cleanups.push(() => handle.close());
    expect(handle.state).toEqual({ lesson: 3 });
    await handle.update({ lesson: 4 });
    // Waiting for the server is the caller's choice; it does not end while the server is down.
    const early = await handle.settled({ signal: AbortSignal.timeout(500) }).catch((error: unknown) => error);
    expect(early).toBeInstanceOf(Error);
    expect(handle.status.pendingCount).toBe(1);

    const up = await startReferenceServer({ dataDir, port });
    cleanups.push(() => up.stop());
    handle.flush();
    await handle.settled({ signal: AbortSignal.timeout(20_000) });
    expect(handle.status).toMatchObject({ connected: true, pendingCount: 0, confirmedVersion: 2n });
    const deltas = await allDeltas(tablet, handle.name);
    expect(deltas.map((delta) => delta.clientSequence)).toEqual([1n, 2n]);
  });

  it("needs the server once: with nothing stored, opening fails at once with UNAVAILABLE", async () => {
    const port = await freePort();
    const storeDir = await mkdtemp(join(tmpdir(), "continuity-offline-"));
    cleanups.push(() => rm(storeDir, { recursive: true, force: true }));
    // The assertion is never looked at: the exchange cannot reach the server.
    const client = track(
      createContinuityClient({
        address: `127.0.0.1:${port}`,
        tokenProvider: createAssertionTokenProvider({ deviceId: "phone", getAssertion: () => Promise.resolve("unused") }),
        deadlineMs: 5_000,
      }),
    );
    const startedAt = Date.now();
    const failure = (await createReplica(client, { store: createFileQueueStore(storeDir) }).catch((error: unknown) => error)) as ContinuityError;
    expect(failure).toMatchObject({ name: "ContinuityError", code: Status.UNAVAILABLE });
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });

  it("ends a replica and halts its handles when another account signs in on the first one's store", async () => {
    const { port, dataDir, down, storeDir } = await serverThatWentDown();
    const address = `127.0.0.1:${port}`;
    const firstRun = deviceClient(address, down.platformA, "dee", "laptop");
    const online = await createReplica(firstRun, { store: createFileQueueStore(storeDir) });
    const course = await online.openStream<Course>({ stream: "course-3", create });
    await course.update({ lesson: 1 });
    await online.settled({ signal: AbortSignal.timeout(10_000) });
    await online.close();
    firstRun.close();
    await down.stop();

    // Another person signs in on the same installation, offline, with the same store.
    const other = track(deviceClient(address, down.platformA, "eve", "laptop", quickRedial));
    const replica = track(await createReplica(other, { store: createFileQueueStore(storeDir) }));
    const ended: ContinuityError[] = [];
    replica.on("ended", (error) => ended.push(error));
    const handle = await replica.openStream<Course>({ stream: "course-3", create });
    await handle.update({ lesson: 2 });

    const up = await startReferenceServer({ dataDir, port });
    cleanups.push(() => up.stop());
    handle.flush();
    await waitFor(() => handle.status.halted !== undefined && ended.length > 0, "the session check", 20_000);
    expect(handle.status.halted).toMatchObject({ code: Status.FAILED_PRECONDITION, reason: "SESSION_CHANGED" });
    expect(ended[0]).toMatchObject({ reason: "SESSION_CHANGED" });
    // Nothing of the first account's queue reached the other account, nor the first one's stream.
    const reader = track(deviceClient(address, up.platformA, "dee", "phone"));
    expect((await allDeltas(reader, handle.name)).length).toBe(1);
  });
});
