import { WebSocket } from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { continuity } from "@continuity/sdk/gen";
import { withCpu } from "./cpu.js";
import { ECHO_PATHS, rawClient, rawServerStream, rawUnary } from "./floors.js";
import { constant, percentile, row, summarize, type Row } from "./rows.js";
import type { BenchSession, ContinuityServer } from "./servers.js";

// The per-call rows of `pnpm bench`: append throughput (1-delta and 10-delta batches) and
// server CPU per append against a unary echo of the same request bytes; edit → seen on
// another device against raw publish → subscriber and against y-websocket.

const v1 = continuity.v1;

/** The processes a core scenario measures. */
export interface CoreTargets {
  readonly continuity: ContinuityServer;
  readonly echo: { readonly address: string; readonly pid: number };
  readonly yjs: { readonly address: string; readonly pid: number };
}

export interface CallOptions {
  readonly clients: number;
  readonly appendsPerClient: number;
  readonly latencySamples: number;
  readonly repeats: number;
  readonly timeCapMs: number;
  readonly progress: (line: string) => void;
}

/** A 61-byte JSON Patch (the small delta); `n` varies the value, not the length. */
export function smallPatch(n: number): Buffer {
  return Buffer.from(JSON.stringify([{ op: "replace", path: "/position", value: String(n).padStart(13, "0") }]));
}

export const now = (): number => performance.now();

export async function createStream(session: BenchSession, streamId: string, encoding: continuity.v1.DeltaEncoding): Promise<string> {
  await session.stream.createStream({
    parent: session.subject,
    streamId,
    stream: { type: "org.example.bench", encoding, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  const name = `${session.subject}/streams/${streamId}`;
  if (encoding === v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH) {
    // `replace` needs the member to exist.
    await session.stream.appendDeltas({ stream: name, deltas: [{ payload: Buffer.from('[{"op":"add","path":"/position","value":""}]') }], clientSequence: 1n });
  }
  return name;
}

/** A device writing to its own stream, with its next client sequence. */
interface Writer {
  readonly session: BenchSession;
  readonly stream: string;
  next: bigint;
}

async function writers(server: ContinuityServer, count: number, prefix: string): Promise<Writer[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const session = await server.session(`${prefix}-${i}`);
      const stream = await createStream(session, `${prefix}-${i}`, v1.DeltaEncoding.DELTA_ENCODING_JSON_PATCH);
      return { session, stream, next: 2n };
    }),
  );
}

interface Throughput {
  readonly perSecond: number;
  readonly cpuMicrosPerCall: number;
}

async function appendRun(server: ContinuityServer, all: readonly Writer[], batch: number, options: CallOptions): Promise<Throughput> {
  const deadline = now() + options.timeCapMs;
  let calls = 0;
  const started = now();
  const { cpuSeconds } = await withCpu(server.child.pid!, () =>
    Promise.all(
      all.map(async (w) => {
        for (let i = 0; i < options.appendsPerClient && now() < deadline; i++) {
          const deltas = Array.from({ length: batch }, (_, j) => ({ payload: smallPatch(i * batch + j) }));
          await w.session.stream.appendDeltas({ stream: w.stream, deltas, clientSequence: w.next });
          w.next++;
          calls++;
        }
      }),
    ),
  );
  const seconds = (now() - started) / 1000;
  return { perSecond: calls / seconds, cpuMicrosPerCall: (cpuSeconds * 1e6) / calls };
}

async function echoRun(address: string, pid: number, request: Uint8Array, options: CallOptions): Promise<Throughput> {
  const client = rawClient(address);
  const deadline = now() + options.timeCapMs;
  let calls = 0;
  const started = now();
  const { cpuSeconds } = await withCpu(pid, () =>
    Promise.all(
      Array.from({ length: options.clients }, async () => {
        for (let i = 0; i < options.appendsPerClient && now() < deadline; i++) {
          await rawUnary(client, ECHO_PATHS.echo, request);
          calls++;
        }
      }),
    ),
  );
  client.close();
  const seconds = (now() - started) / 1000;
  return { perSecond: calls / seconds, cpuMicrosPerCall: (cpuSeconds * 1e6) / calls };
}

/** Appends/s and server CPU per append, for batches of 1 and of 10 deltas, against the echo. */
export async function appendRows(targets: CoreTargets, options: CallOptions): Promise<Row[]> {
  const rows: Row[] = [];
  for (const batch of [1, 10]) {
    options.progress(`appends of ${batch} delta(s): ${options.clients} devices x ${options.appendsPerClient}, ${options.repeats} repeats`);
    const all = await writers(targets.continuity, options.clients, `append${batch}`);
    // The floor echoes the very bytes a Continuity client sends for one such append.
    const request = v1.AppendDeltasRequest.encode({
      stream: all[0]!.stream,
      deltas: Array.from({ length: batch }, (_, j) => ({ payload: smallPatch(j) })),
      clientSequence: 1_000_000n,
    }).finish();
    const ours: Throughput[] = [];
    const floors: Throughput[] = [];
    for (let r = 0; r < options.repeats; r++) {
      ours.push(await appendRun(targets.continuity, all, batch, options));
      floors.push(await echoRun(targets.echo.address, targets.echo.pid, request, options));
    }
    rows.push(
      row(`append-${batch}-rate`, `${batch}-delta appends/s, ${options.clients} devices`, "calls/s", summarize(ours.map((t) => t.perSecond)), "unary echo", summarize(floors.map((t) => t.perSecond)), { atLeast: 0.5 }),
      row(`append-${batch}-cpu`, `server CPU per ${batch}-delta append`, "us", summarize(ours.map((t) => t.cpuMicrosPerCall)), "unary echo", summarize(floors.map((t) => t.cpuMicrosPerCall))),
    );
  }
  return rows;
}

interface Latency {
  readonly p50: number;
  readonly p99: number;
  readonly cpuMicrosPerEdit: number;
}

function latencyOf(samples: number[], cpuSeconds: number): Latency {
  samples.sort((a, b) => a - b);
  return { p50: percentile(samples, 50), p99: percentile(samples, 99), cpuMicrosPerEdit: (cpuSeconds * 1e6) / samples.length };
}

async function continuityLatency(server: ContinuityServer, writer: Writer, reader: BenchSession, options: CallOptions): Promise<Latency> {
  const abort = new AbortController();
  const waiters = new Map<bigint, () => void>();
  let ready!: () => void;
  const isReady = new Promise<void>((resolve) => (ready = resolve));
  const reading = (async () => {
    try {
      for await (const message of reader.subscription.subscribe({ parent: reader.subject, cursor: "", heartbeatSeconds: 300 }, { signal: abort.signal })) {
        if (message.event?.$case === "ready") ready();
        if (message.event?.$case === "deltasAppended") for (const delta of message.event.value.deltas) waiters.get(delta.version)?.();
      }
    } catch {
      // Aborted at the end of the run.
    }
  })();
  await isReady;
  const head = (await writer.session.stream.getStream({ name: writer.stream })).stream!.headVersion;
  const samples: number[] = [];
  const deadline = now() + options.timeCapMs;
  const { cpuSeconds } = await withCpu(server.child.pid!, async () => {
    for (let i = 1; i <= options.latencySamples && now() < deadline; i++) {
      const version = head + BigInt(i);
      const received = new Promise<void>((resolve) => waiters.set(version, resolve));
      const started = now();
      await writer.session.stream.appendDeltas({ stream: writer.stream, deltas: [{ payload: smallPatch(i) }], clientSequence: writer.next });
      writer.next++;
      await received;
      samples.push(now() - started);
      waiters.delete(version);
    }
  });
  abort.abort();
  await reading;
  return latencyOf(samples, cpuSeconds);
}

async function echoLatency(address: string, pid: number, options: CallOptions): Promise<Latency> {
  const publisher = rawClient(address, 1);
  const subscriber = rawClient(address, 2);
  const stream = rawServerStream(subscriber, ECHO_PATHS.subscribe, Buffer.alloc(0));
  await new Promise<void>((resolve) => stream.once("metadata", () => resolve()));
  let onMessage: (() => void) | undefined;
  stream.on("data", () => onMessage?.());
  stream.on("error", () => undefined);
  const samples: number[] = [];
  const deadline = now() + options.timeCapMs;
  const { cpuSeconds } = await withCpu(pid, async () => {
    for (let i = 1; i <= options.latencySamples && now() < deadline; i++) {
      const received = new Promise<void>((resolve) => (onMessage = resolve));
      const started = now();
      await rawUnary(publisher, ECHO_PATHS.publish, smallPatch(i));
      await received;
      samples.push(now() - started);
    }
  });
  stream.cancel();
  publisher.close();
  subscriber.close();
  return latencyOf(samples, cpuSeconds);
}

function connectYjs(address: string, room: string): Promise<{ doc: Y.Doc; provider: WebsocketProvider }> {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(`ws://${address}`, room, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    // Same-process peers would otherwise meet over a BroadcastChannel and skip the server.
    disableBc: true,
  });
  return new Promise((resolve) => provider.once("sync", () => resolve({ doc, provider })));
}

/** The same edit (one map member set to a 13-character string) seen by a second y-websocket peer. */
async function yjsLatency(address: string, pid: number, room: string, options: CallOptions): Promise<Latency> {
  const a = await connectYjs(address, room);
  const b = await connectYjs(address, room);
  const mapA = a.doc.getMap<string>("state");
  const mapB = b.doc.getMap<string>("state");
  let expected = "";
  let onSeen: (() => void) | undefined;
  mapB.observe(() => {
    if (mapB.get("position") === expected) onSeen?.();
  });
  const samples: number[] = [];
  const deadline = now() + options.timeCapMs;
  const { cpuSeconds } = await withCpu(pid, async () => {
    for (let i = 1; i <= options.latencySamples && now() < deadline; i++) {
      expected = String(i).padStart(13, "0");
      const seen = new Promise<void>((resolve) => (onSeen = resolve));
      const started = now();
      mapA.set("position", expected);
      await seen;
      samples.push(now() - started);
    }
  });
  a.provider.destroy();
  b.provider.destroy();
  return latencyOf(samples, cpuSeconds);
}

/** Edit → seen on another device: p50, p99 and server CPU per edit, against both floors. */
export async function latencyRows(targets: CoreTargets, options: CallOptions): Promise<Row[]> {
  options.progress(`edit -> other device: ${options.latencySamples} sequential edits, ${options.repeats} repeats`);
  const [writer] = await writers(targets.continuity, 1, "latency");
  const reader = await targets.continuity.session("latency-reader");
  const ours: Latency[] = [];
  const raw: Latency[] = [];
  const yjs: Latency[] = [];
  for (let r = 0; r < options.repeats; r++) {
    ours.push(await continuityLatency(targets.continuity, writer!, reader, options));
    raw.push(await echoLatency(targets.echo.address, targets.echo.pid, options));
    yjs.push(await yjsLatency(targets.yjs.address, targets.yjs.pid, `latency-${r}`, options));
  }
  const of = (list: Latency[], key: keyof Latency) => summarize(list.map((l) => l[key]));
  return [
    row("latency-p50", "append -> other device p50", "ms", of(ours, "p50"), "raw publish -> subscriber", of(raw, "p50"), { atMost: 2 }),
    row("latency-p99", "append -> other device p99", "ms", of(ours, "p99"), "raw publish -> subscriber", of(raw, "p99"), { atMost: 3 }),
    row("edit-p50-yjs", "edit -> seen on other device p50", "ms", of(ours, "p50"), "y-websocket", of(yjs, "p50")),
    row("edit-cpu-yjs", "server CPU per edit", "us", of(ours, "cpuMicrosPerEdit"), "y-websocket", of(yjs, "cpuMicrosPerEdit")),
    row("edit-cpu-raw", "server CPU per edit", "us", of(ours, "cpuMicrosPerEdit"), "raw publish -> subscriber", of(raw, "cpuMicrosPerEdit")),
    row("payload-yjs", "payload of the edit", "bytes", constant(smallPatch(0).length), "Yjs update", constant(yjsUpdateBytes())),
  ];
}

/** Bytes of the Yjs update for the same edit on a doc that has seen earlier ones. */
function yjsUpdateBytes(): number {
  const doc = new Y.Doc();
  const map = doc.getMap<string>("state");
  map.set("position", "".padStart(13, "0"));
  let bytes = 0;
  doc.on("update", (update: Uint8Array) => (bytes = update.length));
  map.set("position", "1".padStart(13, "0"));
  return bytes;
}
