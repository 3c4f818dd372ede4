import { Status } from "nice-grpc-common";
import type { ContinuityClient } from "../client/continuity-client.js";
import { ContinuityError } from "../errors/continuity-error.js";
import type { SnapshotHeader } from "../gen/continuity/v1/stream_service.js";
import { bytesEqual, concatBytes, createSnapshotHasher, toHex } from "../protocol/index.js";

/** A snapshot whose bytes were checked against the header's size and snapshot hash. */
export interface VerifiedSnapshot {
  /** The header as the server sent it. */
  readonly header: SnapshotHeader;
  /** The state bytes: canonical JSON for JSON streams, the uploaded bytes for opaque ones. */
  readonly state: Uint8Array;
}

/**
 * Fetches a snapshot (GetSnapshot) and verifies it while it streams in: the chunks must add
 * up to the declared size and hash to the declared snapshot hash. When `expected` is given
 * the header must also name that stream uid and chain hash — that is what ties a snapshot to
 * a checkpoint or to a delta chain the caller already trusts.
 *
 * @example
 * ```ts
 * const { header, state } = await fetchVerifiedSnapshot(client, { stream: progress.name, version: 12n });
 * console.log(header.version, new TextDecoder().decode(state));
 * ```
 */
export async function fetchVerifiedSnapshot(
  client: ContinuityClient,
  request: { stream: string; version?: bigint | undefined },
  options: {
    signal?: AbortSignal | undefined;
    expected?: { streamUid?: string; version?: bigint; headHash?: Uint8Array } | undefined;
  } = {},
): Promise<VerifiedSnapshot> {
  let header: SnapshotHeader | undefined;
  let hasher: ReturnType<typeof createSnapshotHasher> | undefined;
  const chunks: Uint8Array[] = [];
  const call = client.streams.getSnapshot(
    request.version === undefined ? { stream: request.stream } : { stream: request.stream, version: request.version },
    options.signal === undefined ? {} : { signal: options.signal },
  );
  for await (const message of call) {
    const part = message.part;
    if (part?.$case === "header") {
      if (header !== undefined) throw integrity(request.stream, "a second snapshot header arrived");
      header = part.value;
      hasher = createSnapshotHasher({
        streamUid: header.streamUid,
        version: header.version,
        headHash: header.headHash,
        encoding: header.encoding,
        sizeBytes: header.sizeBytes,
      });
    } else if (part?.$case === "data") {
      if (hasher === undefined) throw integrity(request.stream, "snapshot data arrived before its header");
      try {
        hasher.update(part.value);
      } catch (error) {
        throw integrity(request.stream, "the snapshot is longer than its header declares", error);
      }
      chunks.push(part.value);
    }
  }
  if (header === undefined || hasher === undefined) throw integrity(request.stream, "the snapshot had no header");
  let digest: Uint8Array;
  try {
    digest = hasher.digest();
  } catch (error) {
    throw integrity(request.stream, "the snapshot is shorter than its header declares", error);
  }
  if (!bytesEqual(digest, header.snapshotHash)) {
    throw integrity(request.stream, `snapshot hash mismatch: computed ${toHex(digest)}, header says ${toHex(header.snapshotHash)}`);
  }
  const expected = options.expected;
  if (expected?.streamUid !== undefined && expected.streamUid !== header.streamUid) {
    throw integrity(request.stream, `snapshot is of stream uid ${header.streamUid}, expected ${expected.streamUid}`);
  }
  if (expected?.version !== undefined && expected.version !== header.version) {
    throw integrity(request.stream, `snapshot is at version ${header.version}, expected ${expected.version}`);
  }
  if (expected?.headHash !== undefined && !bytesEqual(expected.headHash, header.headHash)) {
    throw integrity(request.stream, `snapshot head hash ${toHex(header.headHash)} differs from the expected ${toHex(expected.headHash)}`);
  }
  return { header, state: concatBytes(chunks) };
}

/**
 * The error for data that fails verification. DATA_LOSS is the canonical code for
 * "unrecoverable data corruption"; the reason is the SDK's own, never sent by servers.
 */
export function integrity(stream: string, message: string, cause?: unknown): ContinuityError {
  return new ContinuityError({
    code: Status.DATA_LOSS,
    reason: "INTEGRITY_CHECK_FAILED",
    message: `${stream}: ${message}`,
    metadata: { stream },
    cause,
  });
}
