import { Status } from "nice-grpc-common";
import { createBundleSealer, type BundleSigningKey } from "@continuity/bundle";
import type { continuity } from "@continuity/sdk/gen";
import { protocolError } from "../../errors.js";
import type { DeltaRecord, StreamRecord, SubjectRecordKind } from "../../store/index.js";
import { accountLinkMessage } from "../subject-service.js";
import { deviceMessage } from "../device-service.js";
import { grantMessage } from "../consent-service.js";
import { aheadOfHead, historyCompacted } from "../common.js";
import { snapshotHashSliced } from "../hashing.js";
import type { ServiceDeps } from "../deps.js";
import { wireCheckpoint, wireDelta, wireStream } from "../wire.js";
import { Encoding } from "../../store/index.js";


/**
 * Deltas read from the store per page while exporting: at most this many, and after the
 * first page only as many as fit in PAGE_BYTES at the sizes seen so far. A page is alive
 * until its last delta is sent, long enough for V8 to move it out of the young generation,
 * where only a full collection frees it: pages of 512 deltas of 64 KiB held ~100 MiB.
 */
const DELTA_PAGE = 512;
const PAGE_BYTES = 2 * 1024 * 1024;
/** Identity records read per page. */
const RECORD_PAGE = 200;

/** The exporter's key as the bundle sealer needs it. */
export function bundleSigningKey(deps: ServiceDeps): BundleSigningKey {
  return { privateKey: deps.tokens.signingKey, kid: String(deps.tokens.publicJwk.kid), alg: "ES256" };
}

function changedDuringExport(what: string): Error {
  return protocolError(Status.ABORTED, "INTERNAL", `the subject changed during the export (${what}); export again`);
}

/**
 * Writes a subject as a bundle, part by part (PORT-001 … PORT-006): the manifest from the
 * heads read first, then each stream's records up to that head, then the identity records,
 * then the signed trailer. Constant memory: one page of records at a time. `after` names
 * positions the receiver holds (ExportSubjectRequest.after); those streams carry only the
 * deltas after them. Yields each part's protobuf bytes, which are exactly what is signed.
 */
export async function* exportSubjectParts(deps: ServiceDeps, subjectId: string, after: ReadonlyMap<string, number>, signal?: AbortSignal): AsyncGenerator<Uint8Array, void, undefined> {
  const { store } = deps;
  const streams: StreamRecord[] = [];
  for (let cursor: string | undefined, first = true; first || cursor !== undefined; first = false) {
    const page = await store.listStreamsByUid(subjectId, { after: cursor, limit: 200 });
    streams.push(...page.items);
    cursor = page.nextAfter;
  }
  const starts = new Map<string, number>();
  for (const stream of streams) {
    const held = after.get(stream.uid);
    // Stryker disable next-line ConditionalExpression: without it an unnamed stream's start is stored as undefined, which reads as no start: the same full export
    if (held === undefined) continue;
    if (held < stream.horizonVersion) throw historyCompacted(stream.horizonVersion);
    if (held > stream.headVersion) throw aheadOfHead(stream.headVersion);
    starts.set(stream.uid, held);
  }

  const sealer = createBundleSealer();
  yield sealer.manifest({
    formatVersion: 1,
    exporter: deps.implementation,
    createTime: deps.clock(),
    streams: streams.map((s) => ({
      streamUid: s.uid,
      streamId: s.id,
      type: s.type,
      headVersion: BigInt(s.headVersion),
      headHash: Buffer.from(s.headHash),
      horizonVersion: BigInt(s.horizonVersion),
      deltaCount: BigInt(s.headVersion - (starts.get(s.uid) ?? s.horizonVersion)),
    })),
  });

  let pageSize = 16;
  for (const stream of streams) {
    // Stryker disable next-line OptionalChaining: both callers (ExportSubject, TransferSubject) pass their call's signal
    signal?.throwIfAborted();
    yield sealer.record({ record: { $case: "stream", value: wireStream(stream) } });
    const start = starts.get(stream.uid);
    if (start === undefined && stream.horizonVersion > 0) {
      // A state of up to max_snapshot_bytes: encoded and digested in slices (LIMIT-022).
      yield await sealer.recordSliced({ record: { $case: "snapshot", value: await horizonSnapshot(deps, stream) } });
    }
    let version = start ?? stream.horizonVersion;
    while (version < stream.headVersion) {
      // Stryker disable next-line OptionalChaining: both callers (ExportSubject, TransferSubject) pass their call's signal
      signal?.throwIfAborted();
      // Stryker disable next-line MethodExpression,ArithmeticOperator: a longer page reads only deltas a write racing the export added above the manifest's head, which the loop drops
      const deltas = await store.listDeltas(subjectId, stream.id, version, Math.min(pageSize, stream.headVersion - version));
      pageSize = nextPageSize(deltas);
      if (deltas.length === 0 || deltas[0]!.version !== version + 1 || deltas[0]!.streamUid !== stream.uid) throw changedDuringExport(`stream ${stream.id} lost version ${version + 1}`);
      for (const delta of deltas) {
        if (delta.version > stream.headVersion) break;
        yield sealer.record({ record: { $case: "delta", value: wireDelta(delta) } });
        version = delta.version;
      }
    }
  }

  const kinds: SubjectRecordKind[] = ["checkpoint", "account-link", "device", "grant"];
  for (const kind of kinds) {
    for (let cursor: string | undefined, first = true; first || cursor !== undefined; first = false) {
      // Stryker disable next-line OptionalChaining: both callers (ExportSubject, TransferSubject) pass their call's signal
      signal?.throwIfAborted();
      const page = await store.listSubjectRecords(subjectId, kind, { after: cursor, limit: RECORD_PAGE });
      for (const item of page.items) yield sealer.record(identityRecord(kind, item));
      cursor = page.nextAfter;
    }
  }
  yield await sealer.trailer(bundleSigningKey(deps));
}

/** The next page's size: as many deltas as fit in PAGE_BYTES at this page's average size. */
function nextPageSize(page: readonly DeltaRecord[]): number {
  // Stryker disable next-line all: how many deltas a page reads is memory only; every page continues where the last ended
  if (page.length === 0) return DELTA_PAGE;
  let bytes = 0;
  // Stryker disable next-line all: how many deltas a page reads is memory only; every page continues where the last ended
  for (const delta of page) bytes += delta.payload.length;
  // Stryker disable next-line all: how many deltas a page reads is memory only; every page continues where the last ended
  return Math.max(1, Math.min(DELTA_PAGE, Math.floor(PAGE_BYTES / Math.max(1, bytes / page.length))));
}

function identityRecord(kind: SubjectRecordKind, item: unknown): continuity.v1.BundleRecord {
  switch (kind) {
    case "checkpoint":
      return { record: { $case: "checkpoint", value: wireCheckpoint(item as never) } };
    case "account-link":
      return { record: { $case: "accountLink", value: accountLinkMessage(item as never) } };
    case "device":
      return { record: { $case: "device", value: deviceMessage(item as never) } };
    case "grant":
      return { record: { $case: "grant", value: grantMessage(item as never) } };
  }
}

/** The state at a stream's horizon as a bundle snapshot (PORT-005): header without a name. */
async function horizonSnapshot(deps: ServiceDeps, stream: StreamRecord): Promise<continuity.v1.BundleSnapshot> {
  const { store } = deps;
  let state: Uint8Array;
  if (stream.encoding === Encoding.Opaque) {
    const snapshot = await store.findSnapshot(stream.subjectId, stream.id, stream.horizonVersion);
    if (snapshot === undefined || snapshot.version !== stream.horizonVersion) throw changedDuringExport(`stream ${stream.id} has no snapshot at its horizon`);
    const chunks: Uint8Array[] = [];
    for await (const chunk of store.readSnapshotChunks(stream.subjectId, stream.id, snapshot.version)) chunks.push(chunk);
    state = Buffer.concat(chunks);
  } else {
    const base = await store.loadStateBase(stream.subjectId, stream.id, stream.horizonVersion);
    if (!("baseState" in base) || base.baseVersion !== stream.horizonVersion) throw changedDuringExport(`stream ${stream.id} has no state at its horizon`);
    state = base.baseState;
  }
  return {
    header: {
      stream: "",
      streamUid: stream.uid,
      version: BigInt(stream.horizonVersion),
      headHash: Buffer.from(stream.horizonHash),
      encoding: stream.encoding as number as continuity.v1.DeltaEncoding,
      sizeBytes: BigInt(state.length),
      snapshotHash: Buffer.from(await snapshotHashSliced({ streamUid: stream.uid, version: stream.horizonVersion, headHash: stream.horizonHash, encoding: stream.encoding as never, state })),
    },
    // The bytes as read, not a copy: a state of tens of megabytes copies in a tenth of a second.
    state: Buffer.from(state.buffer, state.byteOffset, state.byteLength),
  };
}

