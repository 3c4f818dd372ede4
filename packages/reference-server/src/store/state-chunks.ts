import { setImmediate as nextTurn } from "node:timers/promises";

/**
 * The storage rule for stored JSON states and large delta payloads, shared by both backends: a state is kept as rows
 * of at most {@link STATE_CHUNK_BYTES}, each written and read by its own short statement with
 * a turn of the event loop between, so that storing or loading a state of tens of megabytes
 * never holds the loop (and every other call) for the second one statement of it takes:
 * SQLite's driver is synchronous, and pg builds and parses every parameter and row on the loop.
 *
 * A state is written under a fresh `state_id` and becomes visible only when the row that names
 * it (with its chunk count) commits in `json_states`, after every chunk: a reader never sees a
 * partial state. Chunks whose state no row names are garbage: those of a state that compaction
 * or a replaced row let go of are deleted right after, chunk by chunk; those of a write that a
 * crash cut short are found and deleted when a store opens ({@link ORPHAN_GRACE_MS}).
 *
 * A delta payload larger than {@link DELTA_PAYLOAD_INLINE_BYTES} that the caller of an append
 * knows beforehand (restore's compensating delta, which can be as large as a whole state) is
 * kept the same way, in the same chunk rows: written under a fresh id before the append's
 * transaction, which names it (id, chunk count, size) in the delta's row instead of the
 * payload; read back a chunk per statement; garbage when no state and no delta names it.
 */

/** Largest chunk row of a stored state. */
export const STATE_CHUNK_BYTES = 1024 * 1024;

/**
 * Chunks no stored state names and written at least this long ago are left over from a write
 * that never finished (a crash), and are deleted. Younger ones may be a write still running on
 * another replica: a whole state's chunks are written in seconds, so an hour leaves no doubt.
 */
export const ORPHAN_GRACE_MS = 60 * 60 * 1000;

/** Delta payloads above this many bytes are stored in chunks when they can be written ahead. */
export const DELTA_PAYLOAD_INLINE_BYTES = STATE_CHUNK_BYTES;

/** Deltas read per statement when a state is materialized: 32 × max_delta_bytes at most. */
export const DELTAS_PER_READ = 32;

/** How many tries a read whose state was let go of meanwhile (compaction) gets. */
export const STATE_READ_ATTEMPTS = 5;

/** Where a stored state's chunks are, as its `json_states` row names them. */
export interface StoredStateRef {
  readonly version: number;
  readonly stateId: string;
  readonly chunks: number;
  readonly sizeBytes: number;
}

/** A state whose chunks are written but that no row names yet. */
export interface StagedState {
  readonly stateId: string;
  readonly chunks: number;
  readonly sizeBytes: number;
}

/** The chunk columns of a `deltas` row: `payload_id` null when the payload is in the row. */
export interface DeltaChunkColumns {
  readonly version: number;
  readonly payload_id?: string | null;
  readonly payload_chunks?: number;
  readonly payload_bytes?: number;
}

/** Where a delta's payload chunks are, or undefined when its row holds the payload. */
export function payloadChunksRef(row: DeltaChunkColumns): StoredStateRef | undefined {
  if (row.payload_id === null || row.payload_id === undefined) return undefined;
  return { version: row.version, stateId: row.payload_id, chunks: Number(row.payload_chunks), sizeBytes: Number(row.payload_bytes) };
}

/**
 * `records` (mapped from `rows`, index for index) with the payloads kept in chunks read by
 * `read`, one chunk statement at a time; undefined when one is gone (its delta was deleted
 * since its row was read).
 */
export async function withChunkedPayloads<T extends { readonly payload: Uint8Array }>(
  records: readonly T[],
  rows: readonly DeltaChunkColumns[],
  read: (ref: StoredStateRef) => Promise<Buffer | undefined>,
): Promise<T[] | undefined> {
  const filled = [...records];
  for (const [i, row] of rows.entries()) {
    const ref = payloadChunksRef(row);
    if (ref === undefined) continue;
    await yieldTurn();
    const payload = await read(ref);
    if (payload === undefined) return undefined;
    filled[i] = { ...filled[i]!, payload };
  }
  return filled;
}

/** What {@link appendWithStagedPayloads} needs of a backend's stored states. */
export interface PayloadStager {
  stage(subjectId: string, streamId: string, payload: Uint8Array, now: number): Promise<StagedState>;
  /** Deletes the chunks of these ids that no row names (a delta that committed keeps its own). */
  drop(subjectId: string, streamId: string, stateIds: readonly string[]): void;
}

const NOTHING_STAGED: ReadonlyMap<Uint8Array, StagedState> = new Map();

/**
 * Runs an append (`queue`) with the payloads of `expectedPayloads` above
 * {@link DELTA_PAYLOAD_INLINE_BYTES} written ahead in chunks, keyed by the payload object
 * they hold. A payload that cannot be staged (the stream gone meanwhile, the store closed)
 * goes in its row as any other; afterwards whatever no committed delta names is dropped.
 * An append with no large expected payload is queued at once, with nothing allocated.
 */
export function appendWithStagedPayloads<T>(
  subjectId: string,
  streamId: string,
  expectedPayloads: readonly Uint8Array[] | undefined,
  stager: PayloadStager,
  isClosed: () => boolean,
  queue: (staged: ReadonlyMap<Uint8Array, StagedState>) => Promise<T>,
): Promise<T> {
  if (expectedPayloads === undefined || !expectedPayloads.some((p) => p.length > DELTA_PAYLOAD_INLINE_BYTES)) return queue(NOTHING_STAGED);
  const large = [...new Set(expectedPayloads)].filter((p) => p.length > DELTA_PAYLOAD_INLINE_BYTES);
  return (async () => {
    const staged = new Map<Uint8Array, StagedState>();
    try {
      for (const payload of large) {
        if (isClosed()) break;
        // A stream gone meanwhile fails the chunk's foreign key: the append then answers.
        const written = await stager.stage(subjectId, streamId, payload, Date.now()).catch(() => undefined);
        if (written === undefined) break;
        staged.set(payload, written);
      }
      return await queue(staged);
    } finally {
      // Whatever no committed delta names (not built, rolled back) is deleted; the rest stays.
      stager.drop(subjectId, streamId, [...staged.values()].map((s) => s.stateId));
    }
  })();
}

/** `state` cut into chunk rows; an empty state is one empty chunk. */
export function chunksOf(state: Uint8Array): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < state.length || chunks.length === 0; offset += STATE_CHUNK_BYTES) {
    chunks.push(state.subarray(offset, offset + STATE_CHUNK_BYTES));
  }
  return chunks;
}

/** Gives the event loop one turn: between two chunk statements. */
export function yieldTurn(): Promise<void> {
  return nextTurn();
}

/**
 * Reads a stored state of `chunks` rows and `sizeBytes` bytes with `readChunk`, one statement
 * per chunk and a turn between; undefined when a chunk is gone (the state was let go of since
 * its row was read, and the read should start again).
 */
export async function readChunked(
  chunks: number,
  sizeBytes: number,
  readChunk: (idx: number) => Uint8Array | undefined | Promise<Uint8Array | undefined>,
): Promise<Buffer | undefined> {
  const state = Buffer.allocUnsafe(sizeBytes);
  let at = 0;
  for (let idx = 0; idx < chunks; idx++) {
    if (idx > 0) await yieldTurn();
    const chunk = await readChunk(idx);
    if (chunk === undefined || at + chunk.length > sizeBytes) return undefined;
    state.set(chunk, at);
    at += chunk.length;
  }
  return at === sizeBytes ? state : undefined;
}

/** Thrown when a stored state could not be read whole after {@link STATE_READ_ATTEMPTS} tries. */
export class StateReadRaced extends Error {
  constructor() {
    super("the stored state was replaced while it was read, every time it was tried");
  }
}
