import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rm, stat } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { DEFAULT_MAX_PART_BYTES, framePrefix, readFrames } from "@continuity/bundle";
import { continuity } from "@continuity/sdk/gen";
import { createChannel, createClientFactory, Metadata, type MethodDefinition } from "nice-grpc";
import { withRssSampling, type RssGrowth } from "./rss.js";
import { spawnReady, stopProcess, type BenchSession } from "./servers.js";

// Bundles out and in at volume: a subject of large opaque deltas is built through
// AppendDeltas, exported over ExportSubject into a `.cbundle` file and imported from that
// file over ImportBundle, each timed against two floors: reading the same file and
// SHA-256-hashing it in this process, and moving the same parts over bare grpc-js.

const v1 = continuity.v1;
const READ_CHUNK = 1 << 20;

const bytes = (value: Uint8Array): Uint8Array => value;

// The parts travel as the bytes the server sent (what the digest and signature commit to),
// never decoded and re-encoded, as the `continuity` CLI moves them.
const RAW_PORTABILITY = {
  exportSubject: {
    path: "/continuity.v1.PortabilityService/ExportSubject",
    requestStream: false,
    responseStream: true,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
    options: {},
  } satisfies MethodDefinition<Uint8Array, Uint8Array, Uint8Array, Uint8Array, false, true>,
  importBundle: {
    path: "/continuity.v1.PortabilityService/ImportBundle",
    requestStream: true,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
    options: {},
  } satisfies MethodDefinition<Uint8Array, Uint8Array, Uint8Array, Uint8Array, true, false>,
} as const;

function rawClient(address: string) {
  const channel = createChannel(address, undefined, {
    "grpc.max_receive_message_length": DEFAULT_MAX_PART_BYTES,
    "grpc.max_send_message_length": DEFAULT_MAX_PART_BYTES,
  });
  return { client: createClientFactory().create(RAW_PORTABILITY, channel), close: () => channel.close() };
}

/** The subject the export and import move. */
export interface BuiltSubject {
  readonly streams: readonly string[];
  readonly deltas: number;
  readonly payloadBytes: number;
  /** Head version of each stream, by name. */
  readonly heads: ReadonlyMap<string, number>;
  readonly seconds: number;
}

/**
 * Appends `totalBytes` of random opaque deltas of `deltaBytes` each to `streamCount` streams
 * of the session's subject, in the largest batches the server's limits allow, the streams
 * written concurrently.
 */
export async function buildSubject(session: BenchSession, options: { totalBytes: number; deltaBytes: number; streamCount: number }): Promise<BuiltSubject> {
  const limits = (await session.serverInfo.getServerInfo({})).limits!;
  if (options.deltaBytes > limits.maxDeltaBytes) throw new Error(`BENCH_PORTABILITY_DELTA_KB: a delta may be at most ${limits.maxDeltaBytes} bytes here`);
  const perBatch = Math.max(1, Math.min(limits.maxBatchDeltas, Math.floor(limits.maxBatchBytes / options.deltaBytes)));
  const deltasPerStream = Math.ceil(options.totalBytes / options.deltaBytes / options.streamCount);
  const streams = Array.from({ length: options.streamCount }, (_, i) => `${session.subject}/streams/bulk-${i}`);
  await Promise.all(
    streams.map((_, i) =>
      session.stream.createStream({
        parent: session.subject,
        streamId: `bulk-${i}`,
        stream: { type: "org.example.bench.media", encoding: v1.DeltaEncoding.DELTA_ENCODING_OPAQUE, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
      }),
    ),
  );
  const started = performance.now();
  const heads = new Map<string, number>();
  await Promise.all(
    streams.map(async (stream) => {
      let written = 0;
      for (let seq = 1n; written < deltasPerStream; seq++) {
        const count = Math.min(perBatch, deltasPerStream - written);
        // Random, so nothing on the way (or in SQLite) gets to compress it.
        const pool = randomBytes(count * options.deltaBytes);
        const deltas = Array.from({ length: count }, (_, k) => ({ payload: pool.subarray(k * options.deltaBytes, (k + 1) * options.deltaBytes) }));
        await session.stream.appendDeltas({ stream, deltas, clientSequence: seq });
        written += count;
      }
      heads.set(stream, written);
    }),
  );
  const deltas = deltasPerStream * options.streamCount;
  return { streams, deltas, payloadBytes: deltas * options.deltaBytes, heads, seconds: (performance.now() - started) / 1000 };
}

/** A timed transfer of `bytes` bundle-file bytes. */
export interface Transfer {
  readonly bytes: number;
  readonly parts: number;
  readonly seconds: number;
}

/** ExportSubject into `file` as a `.cbundle` (each part behind its u32 length), with backpressure to the disk. */
export async function exportToFile(address: string, session: Pick<BenchSession, "subject" | "accessToken">, file: string): Promise<Transfer> {
  const { client, close } = rawClient(address);
  const request = v1.ExportSubjectRequest.encode({ name: session.subject, after: [] }).finish();
  let bytesWritten = 0;
  let parts = 0;
  const started = performance.now();
  try {
    await pipeline(async function* () {
      for await (const part of client.exportSubject(request, { metadata: Metadata({ authorization: `Bearer ${session.accessToken}` }) })) {
        parts += 1;
        bytesWritten += 4 + part.length;
        yield framePrefix(part.length);
        yield part;
      }
    }, createWriteStream(file));
  } finally {
    close();
  }
  return { bytes: bytesWritten, parts, seconds: (performance.now() - started) / 1000 };
}

/** ImportBundle from a `.cbundle` file into the session's subject; checks every record was stored. */
export async function importFromFile(address: string, session: Pick<BenchSession, "subject" | "accessToken">, file: string, expectedParts: number): Promise<Transfer> {
  const { client, close } = rawClient(address);
  const size = (await stat(file)).size;
  const started = performance.now();
  let response: continuity.v1.ImportBundleResponse;
  try {
    const answer = await client.importBundle(readFrames(createReadStream(file, { highWaterMark: READ_CHUNK })), {
      metadata: Metadata({ authorization: `Bearer ${session.accessToken}` }),
    });
    response = v1.ImportBundleResponse.decode(answer);
  } finally {
    close();
  }
  const seconds = (performance.now() - started) / 1000;
  // Every record of the bundle (all but the manifest and the trailer) is accounted for; the
  // account link is skipped, as another server's bundle is not trusted with one (PORT-014).
  const records = expectedParts - 2;
  if (Number(response.recordsImported + response.recordsSkipped) !== records || response.recordsSkipped > 1n) {
    throw new Error(`import stored ${response.recordsImported} and skipped ${response.recordsSkipped} of ${records} records`);
  }
  return { bytes: size, parts: expectedParts, seconds };
}

/**
 * The floor: read `file` and SHA-256 it in this process, as fast as Node does both; the
 * median of `runs`. An export or import has to do at least this much per byte (read or write
 * the bytes, and hash them for the chain and the digest).
 */
export async function hashFileFloor(file: string, runs = 5): Promise<{ bytes: number; seconds: number }> {
  const times: number[] = [];
  let bytesRead = 0;
  for (let i = 0; i < runs; i++) {
    const hash = createHash("sha256");
    bytesRead = 0;
    const started = performance.now();
    for await (const chunk of createReadStream(file, { highWaterMark: READ_CHUNK })) {
      hash.update(chunk as Buffer);
      bytesRead += (chunk as Buffer).length;
    }
    hash.digest();
    times.push((performance.now() - started) / 1000);
  }
  times.sort((a, b) => a - b);
  return { bytes: bytesRead, seconds: times[Math.floor(times.length / 2)]! };
}

/**
 * The transport floor: the same parts moved by the same export and import clients over a
 * bare @grpc/grpc-js server (bench/bundle-floor-server.ts) that reads them from the file and
 * discards what it receives; the median of `runs` each way. What the reference server spends
 * beyond this is its own work (store, digest, chains); what this spends beyond the read +
 * SHA-256 floor is the transport's.
 */
export async function transportFloor(file: string, parts: number, runs = 3): Promise<{ export: Transfer; import: Transfer; exportRss: RssGrowth; importRss: RssGrowth }> {
  const server = await spawnReady(["bench/bundle-floor-server.ts"], { BUNDLE_FLOOR_FILE: file }, "FLOOR_LISTENING=");
  const session = { subject: "subjects/floor", accessToken: "floor" };
  const median = (all: Transfer[]): Transfer => [...all].sort((a, b) => a.seconds - b.seconds)[Math.floor(all.length / 2)]!;
  try {
    const exports: Transfer[] = [];
    const imports: Transfer[] = [];
    // RSS growth of the first run each way, as the reference server's is measured.
    let exportRss: RssGrowth | undefined;
    let importRss: RssGrowth | undefined;
    for (let i = 0; i < runs; i++) {
      const out = await withRssSampling(server.child.pid!, () => exportToFile(server.address, session, `${file}.floor`));
      exports.push(out.result);
      exportRss ??= out.rss;
      const into = await withRssSampling(server.child.pid!, () => importFromFile(server.address, session, file, parts));
      imports.push(into.result);
      importRss ??= into.rss;
    }
    return { export: median(exports), import: median(imports), exportRss: exportRss!, importRss: importRss! };
  } finally {
    await rm(`${file}.floor`, { force: true });
    await stopProcess(server.child);
  }
}

/** Checks that every stream of `built` has its head on the session's subject (import, migration). */
export async function checkHeads(session: BenchSession, built: BuiltSubject): Promise<void> {
  for (const [name, head] of built.heads) {
    const id = name.slice(name.lastIndexOf("/") + 1);
    const stream = (await session.stream.getStream({ name: `${session.subject}/streams/${id}` })).stream;
    if (stream?.headVersion !== BigInt(head)) throw new Error(`stream ${id} has head ${stream?.headVersion} here, not ${head}`);
  }
}
