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
  type QueueStore,
} from "../src/index.js";
import { toHex } from "../src/protocol/index.js";
import type { FakeStreamServer } from "./fake-stream-server.js";
import { useFakeStreamServer } from "./support/fake-stream-clients.js";

// Flush-loop behaviour that needs failures on demand (lost answers, outages, lost sequence
// state) runs against the in-memory fake; the same guarantees are exercised end to end
// against the reference server in integration.test.ts.

const { cleanups, fake, clientFor } = useFakeStreamServer();

type Progress = { lesson?: number; position?: number; count?: number; notes?: Record<string, string> };

async function open(client: ContinuityClient, store: QueueStore = createMemoryQueueStore(), encoding: "json-patch" | "json-merge-patch" = "json-merge-patch"): Promise<JsonStream<Progress>> {
  const handle = await openStream<Progress>(client, { stream: "progress", create: { type: "org.example.progress", encoding }, store });
  cleanups.push(() => handle.close());
  return handle;
}

describe("stream handle flush", () => {
  it("applies an update at once and confirms it against the hash chain", async () => {
    const server = await fake();
    const handle = await open(clientFor(server, "laptop"));
    await handle.update((draft) => {
      draft.lesson = 3;
    });
    expect(handle.state).toEqual({ lesson: 3 });
    expect(handle.status.pendingCount).toBe(1);
    await handle.settled();
    expect(handle.confirmedState).toEqual({ lesson: 3 });
    expect(handle.status).toMatchObject({ pendingCount: 0, confirmedVersion: 1n, lastAcknowledgedVersion: 1n, connected: true });
    const stored = server.deltas.get(handle.name)!;
    expect(handle.status.headHash).toBe(toHex(stored[0]!.hash));
  });

  it("retries a write whose answer was lost with the same client sequence, and it lands once", async () => {
    const server = await fake();
    const handle = await open(clientFor(server, "laptop"));
    server.loseAnswers = 2;
    await handle.update({ lesson: 1 });
    await handle.update({ lesson: 2 });
    await handle.settled();
    const stored = server.deltas.get(handle.name)!;
    expect(stored.map((delta) => delta.clientSequence)).toEqual([1n, 2n]);
    expect(server.appendCalls).toBe(4);
    expect(handle.confirmedState).toEqual({ lesson: 2 });
  });

  it("rebases on a concurrent write by re-running the change function", async () => {
    const server = await fake();
    const laptop = await open(clientFor(server, "laptop"));
    const phone = await open(clientFor(server, "phone"));
    await laptop.update((draft) => {
      draft.count = (draft.count ?? 0) + 1;
    });
    await phone.update((draft) => {
      draft.count = (draft.count ?? 0) + 1;
    });
    await Promise.all([laptop.settled(), phone.settled()]);
    await laptop.settled();
    expect(laptop.confirmedState).toEqual({ count: 2 });
    expect(phone.confirmedState).toEqual({ count: 2 });
    expect(server.headState(laptop.name)).toEqual({ count: 2 });
  });

  it("reports a write that no longer applies after a rebase instead of dropping it silently", async () => {
    const server = await fake();
    const laptop = await open(clientFor(server, "laptop"), createMemoryQueueStore(), "json-patch");
    const phone = await open(clientFor(server, "phone"), createMemoryQueueStore(), "json-patch");
    // A JSON Patch stream takes patch arrays; a merge document is refused before it is queued.
    await expect(laptop.update({ notes: { a: "x" } })).rejects.toMatchObject({ name: "ContinuityError", reason: "MALFORMED_PAYLOAD" });
    await laptop.update([{ op: "add", path: "/notes", value: { a: "x" } }]);
    await laptop.settled();
    await phone.settled();
    const rejected: string[] = [];
    phone.on("rejected", (event) => rejected.push(event.reason));
    await laptop.update([{ op: "remove", path: "/notes" }]);
    await laptop.settled();
    await phone.update([{ op: "replace", path: "/notes/a", value: "y" }]);
    await phone.settled();
    expect(rejected).toEqual(["PATCH_NOT_APPLICABLE"]);
    expect(phone.confirmedState).toEqual({});
    expect(phone.status.pendingCount).toBe(0);
  });

  it("keeps writes made during an outage and flushes them exactly once when the server returns", async () => {
    const server = await fake();
    const handle = await open(clientFor(server, "laptop"));
    server.down = true;
    await handle.update({ lesson: 1 });
    await handle.update({ lesson: 2 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(handle.status).toMatchObject({ connected: false, pendingCount: 2 });
    server.down = false;
    handle.flush();
    await handle.settled();
    expect(server.deltas.get(handle.name)!.map((delta) => delta.clientSequence)).toEqual([1n, 2n]);
    expect(handle.confirmedState).toEqual({ lesson: 2 });
  });

  it("resumes from the persisted queue after a restart without losing or duplicating a write", async () => {
    const server = await fake();
    const directory = await mkdtemp(join(tmpdir(), "continuity-queue-"));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    const first = await open(clientFor(server, "laptop"), createFileQueueStore(directory));
    await first.update({ lesson: 1 });
    await first.settled();
    // The next write commits but its answer is lost, and the process "dies" before retrying.
    server.loseAnswers = 1;
    server.down = false;
    await first.update({ lesson: 2 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    server.down = true;
    await first.update({ lesson: 3 });
    await first.close();

    server.down = false;
    const second = await open(clientFor(server, "laptop"), createFileQueueStore(directory));
    expect(second.state).toEqual({ lesson: 3 });
    await second.settled();
    const stored = server.deltas.get(second.name)!;
    expect(stored.map((delta) => [delta.clientSequence, delta.version])).toEqual([
      [1n, 1n],
      [2n, 2n],
      [3n, 3n],
    ]);
    expect(second.confirmedState).toEqual({ lesson: 3 });
  });

  it.each([
    { server: "names the next sequence in CLIENT_SEQUENCE_REUSED", legacy: false, calls: 4 },
    { server: "does not name it (the SDK probes within the sequence range)", legacy: true, calls: 5 },
  ])("keeps writing after a reinstall lost the device's sequence, when the server $server", async ({ legacy, calls }) => {
    const server = await fake();
    server.reuseWithoutExpectedSequence = legacy;
    const before = await open(clientFor(server, "laptop"));
    await before.update({ lesson: 1 });
    await before.update({ lesson: 2 });
    await before.settled();
    await before.close();

    // A fresh store: the device id is the same, its sequence state is gone.
    const after = await open(clientFor(server, "laptop"));
    const rejected: string[] = [];
    const errors: string[] = [];
    after.on("rejected", (event) => rejected.push(event.reason));
    after.on("error", (error) => errors.push(error.toString()));
    const appendsBefore = server.appendCalls;
    await after.update({ lesson: 5 });
    await after.update({ position: 7 });
    await after.update({ lesson: 6 });
    await after.settled();
    expect({ rejected, errors, halted: after.status.halted }).toEqual({ rejected: [], errors: [], halted: undefined });
    expect(server.deltas.get(after.name)!.map((delta) => delta.clientSequence)).toEqual([1n, 2n, 3n, 4n, 5n]);
    expect(after.confirmedState).toEqual({ lesson: 6, position: 7 });
    // One refused attempt (and, without the server's help, one probe), then each write once.
    expect(server.appendCalls - appendsBefore).toBe(calls);
  });

  it("never sends a client sequence beyond the range the server judges", async () => {
    const server = await fake();
    server.reuseWithoutExpectedSequence = true;
    const client = clientFor(server, "laptop");
    const sent: bigint[] = [];
    const appendDeltas = client.streams.appendDeltas.bind(client.streams);
    client.streams.appendDeltas = (request, options) => {
      sent.push(BigInt(request.clientSequence ?? 0));
      return appendDeltas(request, options);
    };
    const before = await open(client);
    await before.update({ lesson: 1 });
    await before.settled();
    await before.close();
    const after = await open(client);
    await after.update({ lesson: 2 });
    await after.settled();
    expect(sent.every((sequence) => sequence >= 1n && sequence <= 2n ** 53n - 1n)).toBe(true);
    expect(sent).toEqual([1n, 1n, 2n ** 53n - 1n, 2n]);
  });

  it("refuses deltas that do not verify against the hash chain", async () => {
    const server = await fake();
    const laptop = await open(clientFor(server, "laptop"));
    const phone = await open(clientFor(server, "phone"));
    await laptop.update({ lesson: 1 });
    await laptop.settled();
    // A lying server (or a middlebox) alters a stored payload but not its hash.
    server.deltas.get(laptop.name)![0]!.payload = Buffer.from('{"lesson":666}');
    await expect(phone.refresh()).rejects.toMatchObject({ reason: "INTEGRITY_CHECK_FAILED" });
    expect(phone.confirmedState).toEqual({});
    expect(phone.status.confirmedVersion).toBe(0n);
  });
});
