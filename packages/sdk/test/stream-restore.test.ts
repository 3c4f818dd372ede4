import { cp, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createMemoryQueueStore, createReplica, openStream, type OpaqueDelta } from "../src/index.js";
import { deviceClient, startReferenceServer, type RunningServer } from "./support/reference-server.js";

// Stream handles against the real reference server where the fake cannot stand in: a server
// restored from a backup of its data directory, and deltas pushed by a live subscription.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(options: { dataDir?: string; port?: number } = {}): Promise<RunningServer> {
  const running = await startReferenceServer(options);
  cleanups.push(() => running.stop().catch(() => undefined));
  return running;
}

describe("stream handles against the reference server", () => {
  it("recover when the server is restored from a backup taken before some of their writes", async () => {
    const first = await server();
    const backup = await mkdtemp(join(tmpdir(), "continuity-backup-"));
    cleanups.push(() => rm(backup, { recursive: true, force: true }));
    cleanups.push(() => rm(first.dataDir, { recursive: true, force: true }));
    const client = deviceClient(first.address, first.platformA, "ana", "laptop");
    cleanups.push(() => client.close());
    const store = createMemoryQueueStore();
    const create = { type: "org.example.progress", encoding: "json-merge-patch" as const };

    const early = await openStream<{ lesson?: number; quiz?: boolean }>(client, { stream: "progress", create, store });
    await early.update({ lesson: 1 });
    await early.settled();
    await early.close();
    await first.stop();
    await cp(first.dataDir, backup, { recursive: true });

    const second = await first.restart();
    const late = await openStream<{ lesson?: number; quiz?: boolean }>(client, { stream: "progress", create, store });
    await late.update({ lesson: 2 });
    await late.update({ lesson: 3 });
    await late.settled();
    expect(late.status.confirmedVersion).toBe(3n);
    await late.close();
    await second.stop();

    // The operator restores the backup: same stream uid, history ends at version 1.
    await rm(first.dataDir, { recursive: true, force: true });
    await cp(backup, first.dataDir, { recursive: true });
    await server({ dataDir: first.dataDir, port: Number(first.address.split(":").at(-1)) });
    const restored = await openStream<{ lesson?: number; quiz?: boolean }>(client, { stream: "progress", create, store });
    cleanups.push(() => restored.close());
    // Opened from the store at once; the server's word arrives with the catch-up.
    expect(restored.status.confirmedVersion).toBe(3n);
    await restored.refresh({ signal: AbortSignal.timeout(10_000) });
    expect(restored.status.confirmedVersion).toBe(1n);
    expect(restored.confirmedState).toEqual({ lesson: 1 });
    await restored.update({ quiz: true });
    await restored.settled({ signal: AbortSignal.timeout(10_000) });
    expect(restored.confirmedState).toEqual({ lesson: 1, quiz: true });
    expect(restored.status.confirmedVersion).toBe(2n);
  });

  it("keep an opaque handle's own appends out of onDelta when the subscription delivers them", async () => {
    const running = await server();
    cleanups.push(() => rm(running.dataDir, { recursive: true, force: true }));
    const laptop = deviceClient(running.address, running.platformA, "ana", "laptop");
    const phone = deviceClient(running.address, running.platformA, "ana", "phone");
    cleanups.push(() => laptop.close());
    cleanups.push(() => phone.close());
    const replica = await createReplica(laptop);
    cleanups.push(() => replica.close());
    await replica.whenConnected();
    const seen: OpaqueDelta[] = [];
    const create = { type: "org.example.notes", conflictPolicy: "allow-blind-append" as const };
    const handle = await replica.openOpaqueStream({ stream: "notes", create, onDelta: (delta) => seen.push(delta) });
    for (let index = 0; index < 10; index += 1) await handle.append(new Uint8Array([index]));
    await handle.settled();

    const other = await createReplica(phone);
    cleanups.push(() => other.close());
    const otherHandle = await other.openOpaqueStream({ stream: "notes", create });
    await otherHandle.append(new Uint8Array([99]));
    await otherHandle.settled();
    await handle.settled();
    await handle.refresh();
    expect(seen.map((delta) => ({ device: delta.device, payload: [...delta.payload] }))).toEqual([
      { device: other.device, payload: [99] },
    ]);
  });
});
