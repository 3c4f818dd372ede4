import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import {
  createFileQueueStore,
  createLinkCode,
  createReplica,
  grantStreamAccess,
  openStream,
  redeemLinkCode,
  type ContinuityClient,
  type HandoffOffer,
  type Replica,
} from "../src/index.js";
import type { Delta } from "../src/gen/continuity/v1/stream_service.js";
import { deviceClient, startReferenceServer, type RunningServer } from "./support/reference-server.js";
import { waitFor } from "./support/wait.js";

// End to end against the reference server over loopback: the guarantees the SDK promises
// (convergence, exactly-once flush across outages and restarts, verified handoff) are only
// real if they hold against the real thing.

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function track<T extends ContinuityClient | Replica>(value: T): T {
  cleanups.push(() => ("device" in value ? value.close() : (value as ContinuityClient).close()));
  return value;
}

async function allDeltas(client: ContinuityClient, stream: string): Promise<Delta[]> {
  const deltas: Delta[] = [];
  for (;;) {
    const page = await client.streams.listDeltas({ stream, afterVersion: BigInt(deltas.length) });
    deltas.push(...page.deltas);
    if (page.deltas.length === 0 || BigInt(deltas.length) >= page.headVersion) return deltas;
  }
}

type Course = { lesson?: number; position?: number; completed?: string[]; edits?: number; notes?: Record<string, string> };

describe("against the reference server", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startReferenceServer();
  });
  afterAll(async () => {
    await server.dispose();
  });

  it("two devices editing one stream at the same time converge, each seeing the other live", async () => {
    const laptop = track(await createReplica(track(deviceClient(server.address, server.platformA, "ana", "laptop"))));
    const phone = track(await createReplica(track(deviceClient(server.address, server.platformA, "ana", "phone"))));
    const create = { type: "org.example.course-progress", encoding: "json-patch" as const };
    const onLaptop = await laptop.openStream<Course>({ stream: "course-1", create });
    const onPhone = await phone.openStream<Course>({ stream: "course-1", create });
    await Promise.all([laptop.whenConnected(), phone.whenConnected()]);

    const rounds = 8;
    await Promise.all([
      (async () => {
        for (let i = 0; i < rounds; i += 1) {
          await onLaptop.update((draft) => {
            draft.edits = (draft.edits ?? 0) + 1;
            draft.notes = { ...draft.notes, [`laptop-${i}`]: "seen" };
          });
        }
      })(),
      (async () => {
        for (let i = 0; i < rounds; i += 1) {
          await onPhone.update((draft) => {
            draft.edits = (draft.edits ?? 0) + 1;
            draft.position = i;
          });
        }
      })(),
    ]);
    await Promise.all([onLaptop.settled(), onPhone.settled()]);
    // Each device learns of the other's last write through its subscription, not by asking.
    await waitFor(
      () => onLaptop.confirmedState.edits === 2 * rounds && onPhone.confirmedState.edits === 2 * rounds,
      "both replicas reach every edit",
    );
    expect(onLaptop.confirmedState).toEqual(onPhone.confirmedState);
    expect(onLaptop.status.headHash).toBe(onPhone.status.headHash);
    expect(Object.keys(onLaptop.confirmedState.notes ?? {})).toHaveLength(rounds);
    expect(onPhone.confirmedState.position).toBe(rounds - 1);
    const deltas = await allDeltas(deviceClientFor("ana", "laptop"), onLaptop.name);
    expect(deltas).toHaveLength(2 * rounds);
  });

  function deviceClientFor(account: string, device: string): ContinuityClient {
    return track(deviceClient(server.address, server.platformA, account, device));
  }

  it("hands off from a device on one platform to a device on a second, linked platform", async () => {
    const laptopClient = deviceClientFor("ben-a", "laptop");
    const laptop = track(await createReplica(laptopClient));
    const progress = await laptop.openStream<Course>({ stream: "course-7", create: { type: "org.example.course-progress" } });
    await progress.update({ lesson: 4, position: 312 });

    // Platform B joins the subject only through a code the person carries over.
    const { code } = await createLinkCode(laptopClient);
    const phoneClient = track(deviceClient(server.address, server.platformB, "ben-b", "phone"));
    await redeemLinkCode(phoneClient, { code, assertion: await server.platformB.assert("ben-b") });
    await grantStreamAccess(laptopClient, { platform: "demo-b", streamType: "org.example.course-progress", access: "read-write" });
    expect((await phoneClient.session()).subject).toBe(laptop.subject);

    const phone = track(await createReplica(phoneClient));
    await phone.whenConnected();
    const offers: HandoffOffer[] = [];
    phone.on("handoffOffered", (offer) => offers.push(offer));
    const { checkpoint } = await laptop.handOff({
      streams: [progress],
      resume: { activityType: "org.example.lesson", resource: "course-7", position: "lesson-4/t=312" },
    });
    await waitFor(() => offers.length === 1, "the phone receives the offer");
    const resumed = await offers[0]!.accept();
    expect(resumed.checkpoint.name).toBe(checkpoint.name);
    expect(resumed.resume).toMatchObject({ resource: "course-7", position: "lesson-4/t=312" });
    const [stream] = resumed.streams;
    expect(stream).toMatchObject({ kind: "json", state: { lesson: 4, position: 312 }, headHash: progress.status.headHash });

    // Resuming later by name gives the same verified state.
    const again = await phone.resume(checkpoint.name);
    expect(again.streams[0]).toMatchObject({ state: { lesson: 4, position: 312 } });
  });

  it("lets a device that lost its local store write again, continuing at the sequence the server names", async () => {
    const before = track(await createReplica(deviceClientFor("dina", "laptop")));
    const create = { type: "org.example.course-progress" };
    const first = await before.openStream<Course>({ stream: "course-9", create });
    await first.update({ lesson: 1 });
    await first.update({ position: 10 });
    await first.settled();
    await before.close();

    // A reinstall that kept its device id: a fresh (in-memory) store, the same device.
    const client = deviceClientFor("dina", "laptop");
    const after = track(await createReplica(client));
    const progress = await after.openStream<Course>({ stream: "course-9" });
    const rejected: string[] = [];
    progress.on("rejected", (event) => rejected.push(event.reason));
    await progress.update({ lesson: 2 });
    await progress.update({ position: 20 });
    await progress.settled();
    expect(rejected).toEqual([]);
    expect(progress.status.halted).toBeUndefined();
    const deltas = await allDeltas(client, progress.name);
    expect(deltas.map((delta) => delta.clientSequence)).toEqual([1n, 2n, 3n, 4n]);
    expect(progress.confirmedState).toEqual({ lesson: 2, position: 20 });
  });

  it("carries Yjs updates through an opaque stream so that two documents converge", async () => {
    const docs = [new Y.Doc(), new Y.Doc()];
    const replicas = [
      track(await createReplica(deviceClientFor("cleo", "laptop"))),
      track(await createReplica(deviceClientFor("cleo", "tablet"))),
    ];
    const handles = await Promise.all(
      replicas.map((replica, index) =>
        replica.openOpaqueStream({
          stream: "notes",
          create: { type: "org.example.notes", conflictPolicy: "allow-blind-append" },
          onDelta: (delta) => Y.applyUpdate(docs[index]!, delta.payload, "continuity"),
        }),
      ),
    );
    await Promise.all(replicas.map((replica) => replica.whenConnected()));
    docs.forEach((doc, index) =>
      doc.on("update", (update: Uint8Array, origin: unknown) => {
        if (origin !== "continuity") void handles[index]!.append(update);
      }),
    );
    docs[0]!.getText("body").insert(0, "Hello from the laptop. ");
    docs[1]!.getText("body").insert(0, "Tablet says hi. ");
    docs[0]!.getArray<string>("tags").push(["draft"]);
    await Promise.all(handles.map((handle) => handle.settled()));
    await waitFor(
      () => docs[0]!.getText("body").toString() === docs[1]!.getText("body").toString() && docs[1]!.getArray("tags").length === 1,
      "both documents converge",
    );
    expect(docs[0]!.getText("body").toString()).toContain("Hello from the laptop.");
    expect(docs[0]!.getText("body").toString()).toContain("Tablet says hi.");
  });
});

describe("after compaction", () => {
  it("re-bases a replica that fell behind the horizon on a verified snapshot", async () => {
    const server = await startReferenceServer();
    cleanups.push(() => server.dispose());
    const directory = await mkdtemp(join(tmpdir(), "continuity-compacted-"));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    const laptopClient = track(deviceClient(server.address, server.platformA, "kim", "laptop"));
    const first = await openStream<Course>(laptopClient, {
      stream: "course-9",
      create: { type: "org.example.course-progress" },
      store: createFileQueueStore(directory),
    });
    await first.update({ lesson: 1 });
    await first.settled();
    await first.close();

    const phoneClient = track(deviceClient(server.address, server.platformA, "kim", "phone"));
    const phone = await openStream<Course>(phoneClient, { stream: "course-9" });
    cleanups.push(() => phone.close());
    for (const lesson of [2, 3, 4]) await phone.update({ lesson });
    await phone.settled();
    const { stream } = await phoneClient.streams.compactStream({ stream: phone.name, horizonVersion: 3n });
    expect(stream?.horizonVersion).toBe(3n);

    // The laptop's stored replica is at version 1, below the horizon: the deltas it misses
    // are gone, so it must come back through a snapshot — and keep its place in the chain.
    const again = await openStream<Course>(laptopClient, { stream: "course-9", store: createFileQueueStore(directory) });
    cleanups.push(() => again.close());
    // Opened from the store at once; the snapshot arrives with the catch-up.
    expect(again.status.confirmedVersion).toBe(1n);
    await again.refresh({ signal: AbortSignal.timeout(10_000) });
    expect(again.confirmedState).toEqual({ lesson: 4 });
    expect(again.status.confirmedVersion).toBe(4n);
    expect(again.status.headHash).toBe(phone.status.headHash);
    await again.update({ lesson: 5 });
    await again.settled();
    expect(again.status.confirmedVersion).toBe(5n);
  });
});

describe("across server restarts and client crashes", () => {
  it("queues writes while the server is down and flushes them exactly once when it returns", async () => {
    let server = await startReferenceServer();
    cleanups.push(() => server.dispose());
    const directory = await mkdtemp(join(tmpdir(), "continuity-offline-"));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    const client = track(deviceClient(server.address, server.platformA, "dan", "laptop", { deadlineMs: 1_000 }));
    const handle = await openStream<Course>(client, {
      stream: "course-3",
      create: { type: "org.example.course-progress" },
      store: createFileQueueStore(directory),
    });
    cleanups.push(() => handle.close());
    await handle.update({ lesson: 1 });
    await handle.settled();

    await server.stop();
    for (let lesson = 2; lesson <= 6; lesson += 1) await handle.update({ lesson, completed: [`lesson-${lesson - 1}`] });
    await waitFor(() => !handle.status.connected, "the handle notices the outage");
    expect(handle.state).toMatchObject({ lesson: 6 });
    expect(handle.status.pendingCount).toBe(5);

    server = await server.restart();
    handle.flush();
    await handle.settled();
    const deltas = await allDeltas(client, handle.name);
    expect(deltas.map((delta) => delta.clientSequence)).toEqual([1n, 2n, 3n, 4n, 5n, 6n]);
    expect(handle.confirmedState).toEqual({ lesson: 6, completed: ["lesson-5"] });
  });

  it("restarted from its persisted queue after being killed mid-flush, a client loses nothing and duplicates nothing", async () => {
    const server = await startReferenceServer();
    cleanups.push(() => server.dispose());
    const directory = await mkdtemp(join(tmpdir(), "continuity-crash-"));
    cleanups.push(() => rm(directory, { recursive: true, force: true }));
    const count = 30;
    await runWriterAndKill(server, directory, count);

    const client = track(deviceClient(server.address, server.platformA, "eve", "laptop"));
    const handle = await openStream<{ n?: number; seen?: number[] }>(client, { stream: "crash", store: createFileQueueStore(directory) });
    cleanups.push(() => handle.close());
    // The kill left work behind: without it this test would prove nothing.
    expect(handle.status.pendingCount).toBeGreaterThan(0);
    await handle.settled();
    const deltas = await allDeltas(client, handle.name);
    expect(deltas).toHaveLength(count);
    expect(deltas.map((delta) => Number(delta.clientSequence))).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect(handle.confirmedState.n).toBe(count);
  });
});

async function runWriterAndKill(server: RunningServer, directory: string, count: number): Promise<void> {
  const { spawn } = await import("node:child_process");
  const { fileURLToPath } = await import("node:url");
  const script = fileURLToPath(new URL("./support/crashing-writer.ts", import.meta.url));
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", script, server.address, join(server.dataDir, "dev-platforms", "demo-a.private.jwk"), directory, String(count)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise<void>((resolve, reject) => {
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
      // Every write is durably queued and some are in flight: kill without warning.
      if (output.includes("QUEUED")) {
        child.kill("SIGKILL");
      }
    });
    child.once("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve();
      else reject(new Error(`writer exited on its own (${code}) before it could be killed:\n${output}`));
    });
  });
}
