/**
 * Portability cases for what the first portability cases do not look at: how an importer
 * counts and refuses records (field paths included), an opaque stream's horizon in a bundle,
 * incremental imports, the checks of TransferSubject and of the migration methods, the
 * source's hold limit, and what a completed migration reports.
 */
import type { JsonValue } from "@bufbuild/protobuf";
import { continuity } from "@continuity/sdk/gen";
import { TOKEN_EXCHANGE, type CaseContext, type Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkBytes, checkEqual, checkError, fail, Status, type ExpectedError } from "../harness/expect.js";
import { checkpointDigest, deltaHash, snapshotHash } from "../harness/hashing.js";
import { linkAccount } from "../harness/linking.js";
import { richErrorOf } from "../harness/raw-call.js";
import { append, createStream, downloadSnapshot, ENCODING } from "../harness/streams.js";
import { decodePart, exportRaw, importRaw, recordsDigest, transferRaw, type BundlePart, type ImportOutcome, type RawTransfer } from "../portability/bundle.js";

const v1 = continuity.v1;
type Record_ = continuity.v1.BundleRecord["record"];
type Manifest = continuity.v1.BundleManifest;
type Trailer = continuity.v1.BundleTrailer;

const IMPORT = "/continuity.v1.PortabilityService/ImportBundle";
const EXPORT = "/continuity.v1.PortabilityService/ExportSubject";
const TRANSFER = "/continuity.v1.PortabilityService/TransferSubject";
const GRANTED_TYPE = "org.example.edge-granted";

/** A subject with a record of every kind: JSON streams with and without a horizon, an opaque one with an uploaded horizon, a checkpoint, a second platform, a grant. */
interface EdgeSubject {
  readonly owner: Session;
  readonly other: Session;
  /** The bytes of the opaque stream's snapshot at its horizon. */
  readonly canvasState: Buffer;
}

async function buildEdgeSubject(ctx: CaseContext): Promise<EdgeSubject> {
  const owner = await ctx.session();
  const notes = await createStream(ctx, owner, { encoding: ENCODING.mergePatch, streamId: "notes" });
  await append(owner, notes.name, [{ a: 1 }], { clientSequence: 1 });
  await append(owner, notes.name, [{ b: 2 }], { clientSequence: 2 });
  const progress = await createStream(ctx, owner, { encoding: ENCODING.mergePatch, streamId: "progress" });
  for (let seq = 1; seq <= 3; seq++) await append(owner, progress.name, [{ [`lesson${seq}`]: "done" }], { clientSequence: seq });
  await owner.clients.streams.compactStream({ stream: progress.name, horizonVersion: 2n });
  const list = await createStream(ctx, owner, { encoding: ENCODING.jsonPatch, streamId: "list", type: GRANTED_TYPE });
  await append(owner, list.name, [[{ op: "add", path: "/items", value: ["tea"] }]], { clientSequence: 1 });
  const canvas = await createStream(ctx, owner, { encoding: ENCODING.opaque, streamId: "canvas" });
  const written = await append(owner, canvas.name, [Buffer.from("p"), Buffer.from("q")], { clientSequence: 1 });
  const canvasState = Buffer.from("opaque state at 2");
  await owner.clients.streams.uploadSnapshot((async function* () {
    yield { part: { $case: "header" as const, value: { stream: canvas.name, streamUid: canvas.uid, version: 2n, headHash: written.headHash, encoding: ENCODING.opaque, sizeBytes: BigInt(canvasState.length), snapshotHash: Buffer.from(snapshotHash({ streamUid: canvas.uid, version: 2n, headHash: written.headHash, encoding: ENCODING.opaque, state: canvasState })) } } };
    yield { part: { $case: "data" as const, value: canvasState } };
  })());
  await owner.clients.streams.compactStream({ stream: canvas.name, horizonVersion: 2n });
  await append(owner, canvas.name, [Buffer.from("r")], { clientSequence: 2 });
  await owner.clients.checkpoints.createCheckpoint({ parent: owner.subject, checkpointId: "edge", streams: [{ stream: notes.name }, { stream: canvas.name }], resume: { activityType: "org.example.edit", resource: "r", position: "p", fallbackUrl: "", attributes: {} } });
  const other = await linkAccount(ctx, owner, ctx.platforms.b, "edge");
  await owner.clients.consent.createGrant({ parent: owner.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${ctx.platforms.b.id}`, streamType: GRANTED_TYPE, access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } });
  return { owner, other, canvasState };
}

async function exportParts(ctx: CaseContext, session: Session, after: continuity.v1.BundleStreamPosition[] = [], name = session.subject): Promise<BundlePart[]> {
  try {
    return (await exportRaw(ctx, session.token, name, 30_000, after)).map(decodePart);
  } catch (error) {
    throw richErrorOf(EXPORT, error as never);
  }
}

const manifestOf = (parts: readonly BundlePart[]): Manifest => (parts[0]!.decoded.part as { value: Manifest }).value;
const trailerOf = (parts: readonly BundlePart[]): Trailer => (parts.at(-1)!.decoded.part as { value: Trailer }).value;
const recordOf = (part: BundlePart): Record_ => (part.decoded.part?.$case === "record" ? part.decoded.part.value.record : undefined);
const streamIdOf = (name: string): string => name.slice(name.lastIndexOf("/") + 1);

/** The index among `parts` of the first part whose record matches. */
function partIndex(parts: readonly BundlePart[], what: string, match: (record: NonNullable<Record_>) => boolean): number {
  const at = parts.findIndex((part) => {
    const record = recordOf(part);
    return record !== undefined && match(record);
  });
  if (at < 0) fail(`the bundle has no ${what} record`);
  return at;
}

function streamRecordIndex(parts: readonly BundlePart[], streamId: string): number {
  return partIndex(parts, `stream ${streamId}`, (r) => r.$case === "stream" && streamIdOf(r.value.name) === streamId);
}

const recordPart = (record: NonNullable<Record_>): BundlePart => decodePart(Buffer.from(v1.ExportSubjectResponse.encode({ part: { $case: "record", value: { record } } }).finish()));
const manifestPart = (manifest: Manifest): BundlePart => decodePart(Buffer.from(v1.ExportSubjectResponse.encode({ part: { $case: "manifest", value: manifest } }).finish()));
const trailerPart = (trailer: Trailer): BundlePart => decodePart(Buffer.from(v1.ExportSubjectResponse.encode({ part: { $case: "trailer", value: trailer } }).finish()));

/**
 * The bundle without its account link records, resealed: it can be imported into a second
 * subject while the source's accounts stay linked there (PORT-025).
 */
function withoutLinks(parts: readonly BundlePart[]): BundlePart[] {
  return reseal(parts.filter((part) => recordOf(part)?.$case !== "accountLink"), new Map());
}

/** The parts with some replaced, the trailer's count and digest made to match the records again (its signature then no longer does). */
function reseal(parts: readonly BundlePart[], replaced: ReadonlyMap<number, BundlePart>): BundlePart[] {
  const changed = parts.map((part, index) => replaced.get(index) ?? part);
  const records = changed.slice(1, -1);
  const trailer = trailerOf(parts);
  changed[changed.length - 1] = trailerPart({ ...trailer, recordCount: BigInt(records.length), recordsDigest: recordsDigest(records.map((p) => p.json as JsonValue)) });
  return changed;
}

function expectImportError(outcome: ImportOutcome, expected: ExpectedError, what: string): void {
  if (outcome.ok) fail(`${what}: the import must fail, but it reported ${outcome.response.recordsImported} records imported and ${outcome.response.recordsSkipped} skipped`);
  checkError(richErrorOf(IMPORT, outcome.error), expected, what);
}

function expectImported(outcome: ImportOutcome, what: string): continuity.v1.ImportBundleResponse {
  if (!outcome.ok) {
    const rich = richErrorOf(IMPORT, outcome.error);
    fail(`${what}: unexpected ${Status[rich.code]} ${rich.details} ${JSON.stringify(rich.extra)}`);
  }
  return outcome.response;
}

async function expectErrorOf(call: Promise<unknown>, expected: ExpectedError, what: string): Promise<void> {
  try {
    await call;
  } catch (error) {
    checkError(error, expected, what);
    return;
  }
  fail(`${what}: expected ${Status[expected.code]} / ${String(expected.reason)}, but the call succeeded`);
}

const invalid = (field: string): ExpectedError => ({ code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: [field] });

/** Reads a TransferSubject's bundle up to its trailer; fails on anything else. */
async function readTransferBundle(transfer: RawTransfer, what: string): Promise<BundlePart[]> {
  const parts: BundlePart[] = [];
  for (;;) {
    const bytes = await transfer.next().catch((error: unknown) => {
      throw richErrorOf(TRANSFER, error as never);
    });
    if (bytes === undefined) return fail(`${what}: TransferSubject ended before its trailer`);
    parts.push(decodePart(bytes));
    if (v1.TransferSubjectResponse.decode(bytes).part?.$case === "trailer") return parts;
  }
}

/** The error a TransferSubject ends with (failing if it answers anything instead). */
async function transferError(transfer: RawTransfer, what: string): Promise<unknown> {
  for (;;) {
    let bytes: Buffer | undefined;
    try {
      bytes = await transfer.next();
    } catch (error) {
      return richErrorOf(TRANSFER, error as never);
    }
    if (bytes === undefined) return fail(`${what}: TransferSubject must fail, but it ended without an error`);
    const part = v1.TransferSubjectResponse.decode(bytes).part?.$case;
    if (part === "committed") return fail(`${what}: TransferSubject must fail, but it answered committed`);
  }
}

const begin = (name: string, target: string, targetSubject: string, after: continuity.v1.BundleStreamPosition[] = []): continuity.v1.TransferSubjectRequest => ({
  step: { $case: "begin", value: { name, target, targetSubject, after } },
});

/** A session on a second server for the same account (its own subject there). */
async function sessionOn(ctx: CaseContext, server: Awaited<ReturnType<CaseContext["startSecondServer"]>>, source: Session): Promise<{ subject: string; clients: ReturnType<CaseContext["clients"]> }> {
  const exchange = await server.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken: await ctx.mintAssertion({ platform: source.platform, accountId: source.accountId }), subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "", deviceId: source.deviceId, deviceDisplayName: "" });
  return { subject: exchange.subject, clients: server.clients(exchange.accessToken) };
}

/** Polls GetMigration (there is no event for it) until the migration has ended. */
async function migrationEnded(clients: ReturnType<CaseContext["clients"]>, name: string, ctx: CaseContext, limitMs = 60_000): Promise<continuity.v1.Migration> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const { migration } = await clients.portability.getMigration({ name });
    if (migration === undefined) return fail("GetMigration must return the migration");
    const state = migration.state;
    if (state === v1.MigrationState.MIGRATION_STATE_COMPLETED || state === v1.MigrationState.MIGRATION_STATE_FAILED || state === v1.MigrationState.MIGRATION_STATE_CANCELLED) return migration;
    if (Date.now() > deadline) return fail(`the migration did not end in ${limitMs / 1000} s (state ${state})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    ctx.signal.throwIfAborted();
  }
}

export const PORTABILITY_EDGE_CASES = [
  defineCase({
    id: "portability-edges.incremental-import-continues-held-streams",
    requirements: ["PORT-007", "PORT-043"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const source = await ctx.session();
      const notes = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "notes" });
      for (let seq = 1; seq <= 2; seq++) await append(source, notes.name, [{ [`k${seq}`]: seq }], { clientSequence: seq });
      // Without account links: the source's account stays linked to the source subject here.
      const full = withoutLinks(await exportParts(ctx, source));
      const copy = await ctx.session();
      expectImported(await importRaw(ctx, copy.token, full.map((p) => p.bytes)), "importing the full bundle into a second subject");
      for (let seq = 3; seq <= 5; seq++) await append(source, notes.name, [{ [`k${seq}`]: seq }], { clientSequence: seq });
      // What the copy lacks, named by the position it holds: three deltas, no snapshot.
      const incremental = withoutLinks(await exportParts(ctx, source, [{ streamUid: notes.uid, version: 2n }]));
      const records = BigInt(incremental.length - 2);
      checkEqual(incremental.filter((p) => recordOf(p)?.$case === "delta").length, 3, "delta records of the incremental bundle");
      const counted = expectImported(await importRaw(ctx, copy.token, incremental.map((p) => p.bytes)), "importing the incremental bundle into the subject that holds the stream");
      checkEqual([counted.recordsImported, counted.recordsSkipped], [3n, records - 3n], "an incremental import stores the new deltas and skips the rest: the stream record it continues and the device record it holds");
      const { stream: continued } = await copy.clients.streams.getStream({ name: `${copy.subject}/streams/notes` });
      const { stream: original } = await source.clients.streams.getStream({ name: notes.name });
      checkEqual([continued?.uid, continued?.headVersion], [notes.uid, 5n], "the continued stream");
      checkBytes(continued?.headHash, original!.headHash, "the continued stream's head hash equals the source's");
      // A subject that does not hold the stream cannot continue it.
      const stranger = await ctx.session();
      expectImportError(await importRaw(ctx, stranger.token, incremental.map((p) => p.bytes)), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "an incremental bundle imported into a subject without its stream");
      // One that holds it, but not up to where the bundle starts, cannot either.
      const behind = await ctx.session();
      expectImported(await importRaw(ctx, behind.token, full.map((p) => p.bytes)), "importing the full bundle into a third subject");
      const later = withoutLinks(await exportParts(ctx, source, [{ streamUid: notes.uid, version: 4n }]));
      expectImportError(await importRaw(ctx, behind.token, later.map((p) => p.bytes)), { code: Status.FAILED_PRECONDITION, reason: "HISTORY_COMPACTED", metadata: { horizonVersion: "2" } }, "an incremental bundle starting after version 4 imported where the stream ends at version 2");
      const { stream: unchanged } = await behind.clients.streams.getStream({ name: `${behind.subject}/streams/notes` });
      checkEqual(unchanged?.headVersion, 2n, "the refused incremental import stored nothing");
    },
  }),
  defineCase({
    id: "portability-edges.transfer-requests-checked",
    requirements: ["PORT-045", "PORT-039", "PORT-032", "PORT-008"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const source = await ctx.session();
      const stream = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "held" });
      await append(source, stream.name, [{ n: 1 }], { clientSequence: 1 });
      const refused = async (requests: continuity.v1.TransferSubjectRequest[], expected: ExpectedError, what: string) => {
        const transfer = transferRaw(ctx, source.token);
        for (const request of requests) transfer.send(request);
        checkError(await transferError(transfer, what), expected, what);
        transfer.cancel();
      };
      await refused([{ step: { $case: "commit", value: {} } }], invalid("step"), "TransferSubject whose first request is commit");
      await refused([begin("subjects/-", "not an address", "subjects/elsewhere")], invalid("begin.target"), "TransferSubject with a target that is not host:port");
      await refused([begin("subjects/-", "127.0.0.1:2", "elsewhere")], invalid("begin.target_subject"), "TransferSubject with a target subject that is not subjects/{subject}");
      await refused([begin("subjects/", "127.0.0.1:2", "subjects/elsewhere")], invalid("begin.name"), "TransferSubject with a malformed name");
      const stranger = await ctx.session();
      await refused([begin(stranger.subject, "127.0.0.1:2", "subjects/elsewhere")], { code: Status.NOT_FOUND, reason: "SUBJECT_NOT_FOUND" }, "TransferSubject of another subject");

      // While one switch holds the subject, a second cannot begin; a second request that
      // is not commit ends the first without a move, and the held write goes ahead.
      const first = transferRaw(ctx, source.token, 60_000);
      first.send(begin("subjects/-", "127.0.0.1:2", "subjects/elsewhere"));
      const bundle = await readTransferBundle(first, "the first switch");
      checkEqual(manifestOf(bundle).streams.map((s) => s.streamUid), [stream.uid], "the switch's bundle (named subjects/-) holds the token's subject");
      await refused([begin("subjects/-", "127.0.0.1:3", "subjects/elsewhere")], { code: Status.FAILED_PRECONDITION, reason: "MIGRATION_CONFLICT" }, "a second TransferSubject while the first holds the subject");
      const held = append(source, stream.name, [{ n: 2 }], { clientSequence: 2 });
      first.send(begin("subjects/-", "127.0.0.1:2", "subjects/elsewhere"));
      checkError(await transferError(first, "a switch whose second request is begin"), invalid("step"), "TransferSubject whose second request is not commit");
      const acknowledged = await held;
      checkEqual(acknowledged.headVersion, 2n, "the held write goes ahead once the switch ended without commit");
      const { stream: still } = await source.clients.streams.getStream({ name: stream.name });
      checkEqual(still?.headVersion, 2n, "the source still serves the subject");

      // After a committed switch, a new one is refused with the redirect.
      const switched = transferRaw(ctx, source.token);
      switched.send(begin("subjects/-", "127.0.0.1:2", "subjects/elsewhere", [{ streamUid: stream.uid, version: 2n }]));
      const rest = await readTransferBundle(switched, "the committed switch");
      checkEqual(manifestOf(rest).streams.map((s) => s.deltaCount), [0n], "a switch after the target's position brings no delta");
      switched.send({ step: { $case: "commit", value: {} } });
      switched.end();
      const answer = await switched.next();
      const committed = answer === undefined ? undefined : v1.TransferSubjectResponse.decode(answer).part;
      if (committed?.$case !== "committed") return fail(`TransferSubject answers commit with committed, got ${committed?.$case}`);
      check(committed.value.pause !== undefined, "TransferCommitted.pause is set");
      const moved = { code: Status.FAILED_PRECONDITION, reason: "SUBJECT_MOVED", metadata: { target: "127.0.0.1:2", subject: "subjects/elsewhere" } };
      await refused([begin("subjects/-", "127.0.0.1:3", "subjects/again")], moved, "TransferSubject of a subject that moved");
    },
  }),
  defineCase({
    id: "portability-edges.hold-limit-releases-writes",
    requirements: ["PORT-039", "PORT-045"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const source = await ctx.session();
      const stream = await createStream(ctx, source, { encoding: ENCODING.mergePatch });
      await append(source, stream.name, [{ n: 1 }], { clientSequence: 1 });
      // The target reads the bundle and then neither commits nor hangs up.
      const transfer = transferRaw(ctx, source.token, 80_000);
      transfer.send(begin("subjects/-", "127.0.0.1:2", "subjects/elsewhere"));
      await readTransferBundle(transfer, "the switch");
      const held = append(source, stream.name, [{ n: 2 }], { clientSequence: 2 });
      const ended = transferError(transfer, "a switch the target never commits");
      // A source may hold as long as it likes; one that ends the switch at its own limit must
      // let the held write go and move nothing.
      const outcome = await Promise.race([ended.then((error) => ({ error })), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 45_000))]);
      if (outcome === undefined) {
        transfer.cancel();
        await held;
        ctx.note("the source held the switch for 45 s without ending it; nothing to check of its limit");
        return;
      }
      checkError(outcome.error, { code: Status.FAILED_PRECONDITION, reason: "MIGRATION_CONFLICT" }, "a switch the source ended at its hold limit");
      const acknowledged = await held;
      checkEqual(acknowledged.headVersion, 2n, "the held write goes ahead once the source ended the switch");
      const { stream: still } = await source.clients.streams.getStream({ name: stream.name });
      checkEqual(still?.headVersion, 2n, "the source still serves the subject after its hold limit");
    },
  }),
];
