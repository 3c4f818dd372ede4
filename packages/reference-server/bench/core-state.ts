import { open } from "node:fs/promises";
import { join } from "node:path";
import type { ClientReadableStream } from "@grpc/grpc-js";
import { continuity } from "@continuity/sdk/gen";
import { createStream, now, smallPatch, type CoreTargets } from "./core-calls.js";
import { withCpu } from "./cpu.js";
import { ECHO_PATHS, rawClient, rawServerStream, rawUnary } from "./floors.js";
import { rssOf } from "./rss.js";
import { constant, percentile, row, summarize, type Row } from "./rows.js";
import { spawnReady, stopProcess, type BenchSession, type ContinuityServer } from "./servers.js";

// The state and delivery rows of `pnpm bench`: a new device's resume of a 1 MB state against
// one unary download of the same bytes; fan-out to many subscribers against a raw fan-out,
// with the idle memory per subscription and the bytes of one delivered delta; disk per delta;
// and a new device's catch-up on a short and on a long history.

const v1 = continuity.v1;
const SUBSCRIBE = "/continuity.v1.SubscriptionService/Subscribe";
/** Subscriptions per HTTP/2 connection (the server's default cap is 1000 calls). */
const STREAMS_PER_CONNECTION = 250;

export interface StateOptions {
  readonly repeats: number;
  readonly resumeCalls: number;
  readonly stateBytes: number;
  readonly subscribers: number;
  readonly fanoutSamples: number;
  /** The fan-out's subscriptions ask for the compact delivery form (BENCH_FANOUT_FORM=compact). */
  readonly fanoutCompact?: boolean;
  readonly diskDeltas: number;
  readonly diskLargeDeltas: number;
  readonly catchUpShort: number;
  readonly catchUpLong: number;
  readonly catchUpCalls: number;
  readonly progress: (line: string) => void;
}

/** Appends merge patches of ~200 KB of small members until the state holds `bytes`. */
async function fillState(session: BenchSession, stream: string, bytes: number, firstSequence: bigint): Promise<bigint> {
  let sequence = firstSequence;
  let member = 0;
  for (let filled = 0; filled < bytes; ) {
    const patch: Record<string, unknown> = {};
    let size = 0;
    while (size < 200_000 && filled + size < bytes) {
      const key = `item-${String(member++).padStart(6, "0")}`;
      const value = { title: `lesson ${member}`, done: member % 3 === 0, position: member * 7, note: "x".repeat(40) };
      patch[key] = value;
      size += key.length + JSON.stringify(value).length + 4;
    }
    await session.stream.appendDeltas({ stream, deltas: [{ payload: Buffer.from(JSON.stringify(patch)) }], clientSequence: sequence++ });
    filled += size;
  }
  return sequence;
}

async function readSnapshot(session: BenchSession, stream: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = -1;
  for await (const part of session.stream.getSnapshot({ stream })) {
    if (part.part?.$case === "header") size = Number(part.part.value.sizeBytes);
    if (part.part?.$case === "data") chunks.push(Buffer.from(part.part.value));
  }
  const state = Buffer.concat(chunks);
  if (state.length !== size) throw new Error(`snapshot of ${stream}: ${state.length} bytes, header said ${size}`);
  return state;
}

/** A new device resumes a JSON state of `stateBytes`: GetSnapshot at the head, all chunks. */
export async function resumeRows(targets: CoreTargets, options: StateOptions): Promise<Row[]> {
  options.progress(`resume of a ${(options.stateBytes / 1e6).toFixed(1)} MB state: ${options.resumeCalls} calls x ${options.repeats} repeats`);
  const owner = await targets.continuity.session("resume-owner");
  const stream = await createStream(owner, "resume", v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH);
  await fillState(owner, stream, options.stateBytes, 1n);
  const device = await targets.continuity.session("resume-new-device");
  const state = await readSnapshot(device, stream);
  const floorClient = rawClient(targets.echo.address, 3);
  await rawUnary(floorClient, ECHO_PATHS.put, state);
  const ours = { ms: [] as number[], cpu: [] as number[] };
  const floor = { ms: [] as number[], cpu: [] as number[] };
  for (let r = 0; r < options.repeats; r++) {
    const times: number[] = [];
    const { cpuSeconds } = await withCpu(targets.continuity.child.pid!, async () => {
      for (let i = 0; i < options.resumeCalls; i++) {
        const started = now();
        await readSnapshot(device, stream);
        times.push(now() - started);
      }
    });
    ours.ms.push(percentile(times.sort((a, b) => a - b), 50));
    ours.cpu.push((cpuSeconds * 1000) / options.resumeCalls);
    // The floor is cheap enough that CPU ticks (10 ms) need many calls to resolve it.
    const floorCalls = options.resumeCalls * 10;
    const floorTimes: number[] = [];
    const floorCpu = await withCpu(targets.echo.pid, async () => {
      for (let i = 0; i < floorCalls; i++) {
        const started = now();
        const bytes = await rawUnary(floorClient, ECHO_PATHS.download, Buffer.alloc(0));
        if (bytes.length !== state.length) throw new Error("download returned other bytes");
        floorTimes.push(now() - started);
      }
    });
    floor.ms.push(percentile(floorTimes.sort((a, b) => a - b), 50));
    floor.cpu.push((floorCpu.cpuSeconds * 1000) / floorCalls);
  }
  floorClient.close();
  const mb = (state.length / 1e6).toFixed(2);
  return [
    row("resume-time", `new device resumes a ${mb} MB JSON state`, "ms", summarize(ours.ms), "one unary download", summarize(floor.ms), { atMost: 1.5 }),
    row("resume-cpu", `server CPU per resume of ${mb} MB`, "ms", summarize(ours.cpu), "one unary download", summarize(floor.cpu), { atMost: 3 }),
  ];
}

interface Subscribers {
  /** Resolves when every subscriber has received `count` messages more than now. */
  received(count: number): Promise<void>;
  /** The bytes of the last message of subscriber 0. */
  lastMessage(): Buffer | undefined;
  close(): void;
}

/** Opens `n` raw server streams of `path`, spread over connections, and waits for their first message or headers. */
async function openSubscribers(address: string, n: number, path: string, request: Uint8Array, token: string | undefined, firstMessage: boolean): Promise<Subscribers> {
  const clients = Array.from({ length: Math.ceil(n / STREAMS_PER_CONNECTION) }, (_, i) => rawClient(address, 100 + i));
  const counts = new Array<number>(n).fill(0);
  let last: Buffer | undefined;
  let waiting: { target: number[]; resolve: () => void; left: number } | undefined;
  const streams: ClientReadableStream<Buffer>[] = [];
  const opened: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    const stream = rawServerStream(clients[Math.floor(i / STREAMS_PER_CONNECTION)]!, path, request, token);
    streams.push(stream);
    stream.on("error", () => undefined);
    opened.push(new Promise((resolve) => (firstMessage ? stream.once("data", () => resolve()) : stream.once("metadata", () => resolve()))));
    stream.on("data", (message: Buffer) => {
      counts[i]!++;
      if (i === 0) last = message;
      if (waiting !== undefined && counts[i] === waiting.target[i]) {
        waiting.left--;
        if (waiting.left === 0) waiting.resolve();
      }
    });
  }
  await Promise.all(opened);
  return {
    received(count) {
      return new Promise((resolve) => {
        waiting = { target: counts.map((c) => c + count), resolve, left: n };
      });
    },
    lastMessage: () => last,
    close() {
      for (const stream of streams) stream.cancel();
      for (const client of clients) client.close();
    },
  };
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Node arguments that let the bench ask a server for a full GC (bench/gc-on-signal.ts). */
export const GC_ON_SIGNAL = ["--expose-gc", "--import", "./bench/gc-on-signal.mjs"];

async function collectGarbage(pid: number): Promise<void> {
  process.kill(pid, "SIGUSR2");
  await settle(500);
}

/** Idle RSS growth per open subscription, as it is once they are open and settled, and after a full GC. */
async function idleRss(pid: number, open: () => Promise<Subscribers>, n: number): Promise<{ perSubscription: number; afterGc: number; subscribers: Subscribers }> {
  await settle(500);
  await collectGarbage(pid);
  const before = rssOf(pid);
  const subscribers = await open();
  await settle(1000);
  const open_ = rssOf(pid);
  await collectGarbage(pid);
  return { perSubscription: (open_ - before) / n, afterGc: (rssOf(pid) - before) / n, subscribers };
}

/**
 * Fan-out: `subscribers` devices' subscriptions to one subject against as many raw
 * server-stream subscribers; append → all delivered. The same run gives the idle memory per
 * subscription and the bytes of the message that delivers one small delta.
 */
export async function fanoutRows(targets: CoreTargets, options: StateOptions, serverArgs: readonly string[] = [], floorArgs: readonly string[] = []): Promise<Row[]> {
  const n = options.subscribers;
  options.progress(`fan-out to ${n} subscribers: ${options.fanoutSamples} appends x ${options.repeats} repeats`);
  let writer = await targets.continuity.session("fanout-writer", "fanout-user");
  const stream = await createStream(writer, "fanout", v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH);
  let sequence = 2n;
  const ours = { p50: [] as number[], rss: [] as number[], gc: [] as number[], cpu: [] as number[] };
  const floor = { p50: [] as number[], rss: [] as number[], gc: [] as number[], cpu: [] as number[] };
  for (let r = 0; r < options.repeats; r++) {
    // Fresh processes for every repeat: memory an earlier scenario (or repeat) freed would
    // otherwise be reused by the subscriptions, and RSS would not show what they cost.
    await targets.continuity.restart([...GC_ON_SIGNAL, ...serverArgs]);
    writer = await targets.continuity.session("fanout-writer", "fanout-user");
    const reader = await targets.continuity.session("fanout-reader", "fanout-user");
    const form = options.fanoutCompact === true ? { deliveryForm: v1.DeliveryForm.DELIVERY_FORM_COMPACT } : {};
    const request = v1.SubscribeRequest.encode({ parent: reader.subject, cursor: "", heartbeatSeconds: 300, ...form }).finish();
    const echo = await spawnReady(["bench/echo-server.ts"], {}, "ECHO_LISTENING=", [...GC_ON_SIGNAL, ...floorArgs]);
    const mine = await idleRss(targets.continuity.child.pid!, () => openSubscribers(targets.continuity.address, n, SUBSCRIBE, request, reader.accessToken, true), n);
    ours.rss.push(mine.perSubscription);
    ours.gc.push(mine.afterGc);
    const samples: number[] = [];
    const { cpuSeconds } = await withCpu(targets.continuity.child.pid!, async () => {
      for (let i = 0; i < options.fanoutSamples; i++) {
        const all = mine.subscribers.received(1);
        const started = now();
        await writer.stream.appendDeltas({ stream, deltas: [{ payload: smallPatch(i) }], clientSequence: sequence++ });
        await all;
        samples.push(now() - started);
      }
    });
    ours.cpu.push((cpuSeconds * 1000) / options.fanoutSamples);
    mine.subscribers.close();
    ours.p50.push(percentile(samples.sort((a, b) => a - b), 50));

    const raw = await idleRss(echo.child.pid!, () => openSubscribers(echo.address, n, ECHO_PATHS.subscribe, Buffer.alloc(0), undefined, false), n);
    floor.rss.push(raw.perSubscription);
    floor.gc.push(raw.afterGc);
    const publisher = rawClient(echo.address, 99);
    const floorSamples: number[] = [];
    const floorCpu = await withCpu(echo.child.pid!, async () => {
      for (let i = 0; i < options.fanoutSamples; i++) {
        const all = raw.subscribers.received(1);
        const started = now();
        await rawUnary(publisher, ECHO_PATHS.publish, smallPatch(i));
        await all;
        floorSamples.push(now() - started);
      }
    });
    floor.cpu.push((floorCpu.cpuSeconds * 1000) / options.fanoutSamples);
    publisher.close();
    raw.subscribers.close();
    await stopProcess(echo.child);
    floor.p50.push(percentile(floorSamples.sort((a, b) => a - b), 50));
  }
  const kb = (values: number[]) => summarize(values.map((v) => v / 1024));
  const rows = [
    row("fanout-p50", `append -> all ${n} subscribers delivered p50`, "ms", summarize(ours.p50), "raw fan-out", summarize(floor.p50), { atMost: 3 }, `${options.fanoutCompact === true ? "compact" : "full"} delivery form`),
    // The append itself is in the figure (a 1-delta append, with its commit), the publish in the floor's.
    row("fanout-cpu", `server CPU per append delivered to all ${n}`, "ms", summarize(ours.cpu), "raw fan-out", summarize(floor.cpu)),
    row("idle-rss", "idle RSS per open subscription", "KiB", kb(ours.rss), "raw server-stream", kb(floor.rss), { valueAtMost: 20 }),
    row("idle-rss-gc", "idle RSS per open subscription, after GC", "KiB", kb(ours.gc), "raw server-stream", kb(floor.gc), { valueAtMost: 20 }),
  ];
  const wire = await wireBytes(targets, writer, stream, sequence);
  const envelope = (bytes: number) => `envelope ${bytes - wire.payload} bytes beyond the payload`;
  rows.push(
    row(
      "wire-bytes",
      `message delivering one ${wire.payload}-byte JSON Patch, compact form`,
      "bytes",
      constant(wire.compact),
      "the payload",
      constant(wire.payload),
      { valueAtMost: wire.payload + 150 },
      `${envelope(wire.compact)} (goal <= 150); the stream's first batch in a call also defines its names: ${wire.compactFirst} bytes; plus 5 bytes of gRPC framing`,
    ),
    row("wire-bytes-full", `message delivering one ${wire.payload}-byte JSON Patch, full form`, "bytes", constant(wire.full), "the payload", constant(wire.payload), undefined, `${envelope(wire.full)}: what a client that does not ask for the compact form gets`),
  );
  return rows;
}

/**
 * The bytes of the message that delivers one small delta, in the full and in the compact
 * delivery form: one subscription of each, two appends; the second is the steady state (the
 * first batch of a stream in a compact call also defines the stream's and device's indexes).
 */
async function wireBytes(targets: CoreTargets, writer: BenchSession, stream: string, firstSequence: bigint): Promise<{ full: number; compact: number; compactFirst: number; payload: number }> {
  const reader = await targets.continuity.session("fanout-reader", "fanout-user");
  const subscribe = (deliveryForm: continuity.v1.DeliveryForm | undefined) =>
    openSubscribers(
      targets.continuity.address,
      1,
      SUBSCRIBE,
      v1.SubscribeRequest.encode({ parent: reader.subject, cursor: "", heartbeatSeconds: 300, ...(deliveryForm === undefined ? {} : { deliveryForm }) }).finish(),
      reader.accessToken,
      true,
    );
  const full = await subscribe(undefined);
  const compact = await subscribe(v1.DeliveryForm.DELIVERY_FORM_COMPACT);
  const sizes: { full: number; compact: number }[] = [];
  let payload = 0;
  try {
    for (let i = 0; i < 2; i++) {
      const delivered = Promise.all([full.received(1), compact.received(1)]);
      await writer.stream.appendDeltas({ stream, deltas: [{ payload: smallPatch(i) }], clientSequence: firstSequence + BigInt(i) });
      await delivered;
      const fullMessage = full.lastMessage()!;
      const compactMessage = compact.lastMessage()!;
      const decoded = v1.SubscribeResponse.decode(fullMessage);
      if (decoded.event?.$case !== "deltasAppended") throw new Error(`the full form delivered ${decoded.event?.$case ?? "nothing"}`);
      const compacted = v1.SubscribeResponse.decode(compactMessage);
      if (compacted.event?.$case !== "compactDeltasAppended") throw new Error(`the compact form delivered ${compacted.event?.$case ?? "nothing"}`);
      payload = decoded.event.value.deltas[0]!.payload.length;
      sizes.push({ full: fullMessage.length, compact: compactMessage.length });
    }
  } finally {
    full.close();
    compact.close();
  }
  return { full: sizes[1]!.full, compact: sizes[1]!.compact, compactFirst: sizes[0]!.compact, payload };
}

/**
 * Bytes of the database in use: pages minus free pages, from the SQLite file header (page
 * size at offset 16, page count at 28, free-list pages at 36). Read with the server stopped,
 * so the WAL is checkpointed into the file and the header is current. Free pages are left
 * out because SQLite reuses them before it grows the file.
 */
async function databaseBytes(dir: string): Promise<number> {
  const file = join(dir, "data", "continuity.sqlite");
  const handle = await open(file, "r");
  try {
    const header = Buffer.alloc(100);
    await handle.read(header, 0, 100, 0);
    const rawPageSize = header.readUInt16BE(16);
    const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
    return (header.readUInt32BE(28) - header.readUInt32BE(36)) * pageSize;
  } finally {
    await handle.close();
  }
}

/**
 * Disk per delta: the growth of the pages in use over many small deltas, and over small
 * deltas to a 1 MB state, each measured between restarts of a server of its own.
 */
export async function diskRows(server: ContinuityServer, dir: string, options: StateOptions): Promise<Row[]> {
  options.progress(`disk per delta: ${options.diskDeltas} small deltas, then ${options.diskLargeDeltas} on a ${(options.stateBytes / 1e6).toFixed(1)} MB state`);
  const devices = 8;
  const sessions = await Promise.all(Array.from({ length: devices }, (_, i) => server.session(`disk-${i}`, "disk-user")));
  const streams = await Promise.all(sessions.map((s, i) => createStream(s, `disk-${i}`, v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH)));
  await server.restart();
  const start = await databaseBytes(dir);
  const fresh = await Promise.all(Array.from({ length: devices }, (_, i) => server.session(`disk-${i}`, "disk-user")));
  const perDevice = Math.ceil(options.diskDeltas / devices);
  const smallStarted = now();
  const smallCpu = await withCpu(server.child.pid!, () =>
    Promise.all(
      fresh.map(async (s, i) => {
        for (let k = 0; k < perDevice; k++) {
          await s.stream.appendDeltas({ stream: streams[i]!, deltas: [{ payload: smallPatch(k) }], clientSequence: BigInt(k + 2) });
        }
      }),
    ),
  );
  const smallSeconds = (now() - smallStarted) / 1000;
  await server.restart();
  const afterSmall = await databaseBytes(dir);
  const owner = await server.session("disk-0", "disk-user");
  const large = await createStream(owner, "disk-large", v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH);
  const largeSequence = await fillState(owner, large, options.stateBytes, 1n);
  await server.restart();
  const beforeLarge = await databaseBytes(dir);
  // 8 devices append at once (each 1-delta appends, as one device would), so the run takes
  // seconds at full durability; the restart waits for any state the rule made due.
  const writers = await Promise.all(Array.from({ length: devices }, (_, i) => server.session(`disk-${i}`, "disk-user")));
  const perWriter = Math.ceil(options.diskLargeDeltas / devices);
  const largeStarted = now();
  const largeCpu = await withCpu(server.child.pid!, () =>
    Promise.all(
      writers.map(async (writer, w) => {
        // Client sequences are per device and stream: disk-0 filled the state, the others start here.
        let sequence = w === 0 ? largeSequence : 1n;
        for (let k = 0; k < perWriter; k++) {
          const position = String(w * perWriter + k).padStart(13, "0");
          await writer.stream.appendDeltas({ stream: large, deltas: [{ payload: Buffer.from(`{"position":"${position}"}`) }], clientSequence: sequence++ });
        }
      }),
    ),
  );
  const largeSeconds = (now() - largeStarted) / 1000;
  await server.restart();
  const afterLarge = await databaseBytes(dir);
  const small = (afterSmall - start) / (perDevice * devices);
  const onLarge = (afterLarge - beforeLarge) / (perWriter * devices);
  const largePayload = `{"position":"${"0".padStart(13, "0")}"}`.length;
  return [
    row("disk-small", `disk per small delta (${smallPatch(0).length}-byte payload)`, "bytes", constant(small), "the payload", constant(smallPatch(0).length), { atMost: 3 }),
    row("disk-large", `disk per delta on a ${(options.stateBytes / 1e6).toFixed(1)} MB state (${largePayload}-byte payload)`, "bytes", constant(onLarge), "the payload", constant(largePayload), undefined, "goal: a bounded, declared cost (see README)"),
    // What a large state costs an append, against an append to a small one by the same 8 devices
    // on the same server: one run each (these appends are the disk figures' own).
    row(
      "large-state-append-cpu",
      `server CPU per 1-delta append to a ${(options.stateBytes / 1e6).toFixed(1)} MB state, 8 devices`,
      "us",
      constant((largeCpu.cpuSeconds * 1e6) / (perWriter * devices)),
      "the same to small states",
      constant((smallCpu.cpuSeconds * 1e6) / (perDevice * devices)),
    ),
    row(
      "large-state-appends",
      `1-delta appends/s to a ${(options.stateBytes / 1e6).toFixed(1)} MB state, 8 devices`,
      "calls/s",
      constant((perWriter * devices) / largeSeconds),
      "the same to small states",
      constant((perDevice * devices) / smallSeconds),
    ),
  ];
}

/** Appends `count` small merge patches to `stream` in batches of 500, from 4 devices at once. */
async function buildHistory(server: ContinuityServer, account: string, stream: string, count: number, progress: (line: string) => void): Promise<void> {
  const devices = await Promise.all(Array.from({ length: 4 }, (_, i) => server.session(`history-${i}`, account)));
  let appended = 0;
  let reported = 0;
  const batch = 500;
  await Promise.all(
    devices.map(async (device, d) => {
      for (let sequence = 1n; ; sequence++) {
        const size = Math.min(batch, count - appended);
        if (size <= 0) return;
        appended += size;
        const deltas = Array.from({ length: size }, (_, j) => ({ payload: Buffer.from(`{"p":${d * 1e9 + Number(sequence) * batch + j}}`) }));
        await device.stream.appendDeltas({ stream, deltas, clientSequence: sequence });
        if (appended - reported >= 100_000) {
          reported = appended;
          progress(`  history: ${appended} of ${count} deltas`);
        }
      }
    }),
  );
}

/** A new device's catch-up (state at the head, then a subscription until ready) on a short and a long history. */
export async function catchUpRows(targets: CoreTargets, options: StateOptions): Promise<Row[]> {
  options.progress(`catch-up of a new device: ${options.catchUpShort} and ${options.catchUpLong} deltas of history`);
  const owner = await targets.continuity.session("history-owner", "history-user");
  const streams: string[] = [];
  for (const count of [options.catchUpShort, options.catchUpLong]) {
    const stream = await createStream(owner, `history-${count}`, v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH);
    const started = now();
    await buildHistory(targets.continuity, "history-user", stream, count, options.progress);
    options.progress(`  ${count} deltas in ${((now() - started) / 1000).toFixed(1)} s`);
    streams.push(stream);
  }
  const device = await targets.continuity.session("history-new-device", "history-user");
  const catchUp = async (stream: string): Promise<number> => {
    const started = now();
    await readSnapshot(device, stream);
    const abort = new AbortController();
    for await (const message of device.subscription.subscribe({ parent: device.subject, cursor: "", heartbeatSeconds: 300 }, { signal: abort.signal })) {
      if (message.event?.$case === "ready") break;
    }
    abort.abort();
    return now() - started;
  };
  const short: number[] = [];
  const long: number[] = [];
  for (let r = 0; r < options.repeats; r++) {
    // Alternated call by call, so that a burst of load on the machine hits both alike.
    const times: [number[], number[]] = [[], []];
    for (let i = 0; i < options.catchUpCalls; i++) {
      times[0].push(await catchUp(streams[0]!));
      times[1].push(await catchUp(streams[1]!));
    }
    short.push(percentile(times[0].sort((a, b) => a - b), 50));
    long.push(percentile(times[1].sort((a, b) => a - b), 50));
  }
  return [
    row("catch-up", `new device catch-up, ${options.catchUpLong} vs ${options.catchUpShort} deltas of history`, "ms", summarize(long), `${options.catchUpShort} deltas`, summarize(short), { atMost: 1.2 }),
  ];
}
