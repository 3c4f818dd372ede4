import type { ContinuityClient } from "../../src/index.js";
import type { Delta, Stream } from "../../src/gen/continuity/v1/stream_service.js";

/** A stream's head as a server reports it. */
export interface StreamHead {
  /** The stream id, the last segment of its name (equal across servers; names are not). */
  readonly id: string;
  readonly uid: string;
  readonly headVersion: bigint;
  /** Lowercase hex. */
  readonly headHash: string;
}

/** The stream id of `subjects/{subject}/streams/{stream}`. */
export function streamIdOf(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}

/** Every stream of `subject` with its head, by stream id (ListStreams, page by page). */
export async function listHeads(client: ContinuityClient, subject: string, options: { signal?: AbortSignal } = {}): Promise<Map<string, StreamHead>> {
  const heads = new Map<string, StreamHead>();
  let pageToken = "";
  do {
    const page = await client.streams.listStreams({ parent: subject, pageSize: 100, pageToken, type: "" }, options.signal === undefined ? {} : { signal: options.signal });
    for (const stream of page.streams) heads.set(streamIdOf(stream.name), headOf(stream));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return heads;
}

function headOf(stream: Stream): StreamHead {
  return { id: streamIdOf(stream.name), uid: stream.uid, headVersion: stream.headVersion, headHash: Buffer.from(stream.headHash).toString("hex") };
}

/** Every delta of a stream from version 1 (ListDeltas, page by page). */
export async function listAllDeltas(client: ContinuityClient, stream: string): Promise<Delta[]> {
  const deltas: Delta[] = [];
  for (;;) {
    const page = await client.streams.listDeltas({ stream, afterVersion: BigInt(deltas.length) });
    deltas.push(...page.deltas);
    if (page.deltas.length === 0 || BigInt(deltas.length) >= page.headVersion) return deltas;
  }
}
