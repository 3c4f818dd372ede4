/**
 * Portability cases for what the first portability cases do not look at: how an importer
 * counts and refuses records (field paths included), an opaque stream's horizon in a bundle,
 * incremental imports, the checks of TransferSubject and of the migration methods, the
 * source's hold limit, and what a completed migration reports.
 */
import { continuity } from "@continuity/sdk/gen";
import type { CaseContext, Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkBytes, checkEqual, checkError, fail, Status, type ExpectedError } from "../harness/expect.js";
import { canonicalJson, checkpointDigest, deltaHash, snapshotHash } from "../harness/hashing.js";
import { linkAccount } from "../harness/linking.js";
import { migrationEnded, sessionOn } from "../harness/migration.js";
import { rawUnaryCall, richErrorOf } from "../harness/raw-call.js";
import { append, appendRequest, createStream, downloadSnapshot, ENCODING } from "../harness/streams.js";
import { createServer as createNetServer, type Socket } from "node:net";
import { decodePart, expectImported, exportParts, exportRaw, importRaw, manifestPart, recordOf, recordPart, reseal, trailerOf, transferRaw, type BundlePart, type ImportOutcome, type RawTransfer } from "../portability/bundle.js";
import { startSourceProxy } from "../portability/source-proxy.js";
import { planShifts } from "./patch-work.js";

const v1 = continuity.v1;
type Record_ = continuity.v1.BundleRecord["record"];
type Manifest = continuity.v1.BundleManifest;

const IMPORT = "/continuity.v1.PortabilityService/ImportBundle";
const EXPORT = "/continuity.v1.PortabilityService/ExportSubject";
const TRANSFER = "/continuity.v1.PortabilityService/TransferSubject";
const GRANTED_TYPE = "org.example.edge-granted";
const SHARED_TYPE = "org.example.edge-shared";

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
  await owner.clients.consent.createGrant({ parent: owner.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${ctx.platforms.b.id}`, streamType: SHARED_TYPE, access: v1.GrantAccess.GRANT_ACCESS_READ_WRITE, createTime: undefined, revokeTime: undefined } });
  // A second device of the owner, revoked: its record travels with its revoke time.
  const retired = await ctx.session({ accountId: owner.accountId });
  await owner.clients.devices.revokeDevice({ name: retired.device });
  return { owner, other, canvasState };
}

/** The session's subject (or `name`) exported, decoded. */
const exportOwn = (ctx: CaseContext, session: Session, after: continuity.v1.BundleStreamPosition[] = [], name = session.subject): Promise<BundlePart[]> => exportParts(ctx, session.token, name, after);

const manifestOf = (parts: readonly BundlePart[]): Manifest => (parts[0]!.decoded.part as { value: Manifest }).value;
const streamIdOf = (name: string): string => name.slice(name.lastIndexOf("/") + 1);
const hex = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? []).toString("hex");

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

/**
 * The bundle without its account link records, resealed: it can be imported into a second
 * subject while the source's accounts stay linked there (PORT-025).
 */
function withoutLinks(parts: readonly BundlePart[]): BundlePart[] {
  return reseal(parts.filter((part) => recordOf(part)?.$case !== "accountLink"), new Map());
}

function expectImportError(outcome: ImportOutcome, expected: ExpectedError, what: string): void {
  if (outcome.ok) fail(`${what}: the import must fail, but it reported ${outcome.response.recordsImported} records imported and ${outcome.response.recordsSkipped} skipped`);
  checkError(richErrorOf(IMPORT, outcome.error), expected, what);
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

/** A pause is a valid Duration no longer than the time it lies within. */
function checkPause(pause: { seconds: bigint; nanos: number } | undefined, withinMs: number, what: string): void {
  if (pause === undefined) return fail(`${what} must be set`);
  check(pause.seconds >= 0n && pause.nanos >= 0 && pause.nanos < 1e9, `${what} must be a valid non-negative Duration, got ${pause.seconds} s ${pause.nanos} ns`);
  const ms = Number(pause.seconds) * 1000 + pause.nanos / 1e6;
  check(ms <= withinMs, `${what} (${ms} ms) cannot be longer than the ${withinMs} ms it lies within`);
}

const begin = (name: string, target: string, targetSubject: string, after: continuity.v1.BundleStreamPosition[] = []): continuity.v1.TransferSubjectRequest => ({
  step: { $case: "begin", value: { name, target, targetSubject, after } },
});

export const PORTABILITY_EDGE_CASES = [
  defineCase({
    id: "portability-edges.import-counts-each-record",
    requirements: ["PORT-042", "PORT-014", "PORT-025", "PORT-021"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const subject = await buildEdgeSubject(ctx);
      const parts = await exportOwn(ctx, subject.owner);
      const count = trailerOf(parts).recordCount;
      checkEqual(BigInt(parts.length - 2), count, "BundleTrailer.record_count");
      await subject.owner.clients.subjects.deleteSubject({ name: subject.owner.subject });
      // A device and a grant naming a platform this server does not know are skipped
      // (PORT-025); re-sealed, the bundle's signature no longer verifies, so its two
      // account links are skipped too (PORT-014). Everything else is stored.
      const unknown = "platforms/no-such-platform";
      const device = partIndex(parts, "device", (r) => r.$case === "device" && r.value.name.endsWith(`/devices/${subject.owner.deviceId}`));
      const grant = partIndex(parts, "grant", (r) => r.$case === "grant");
      const deviceRecord = recordOf(parts[device]!) as Extract<NonNullable<Record_>, { $case: "device" }>;
      const grantRecord = recordOf(parts[grant]!) as Extract<NonNullable<Record_>, { $case: "grant" }>;
      const links = parts.filter((p) => recordOf(p)?.$case === "accountLink").length;
      checkEqual(links, 2, "account link records in the bundle (one per platform)");
      const untrusted = reseal(parts, new Map([
        [device, recordPart({ $case: "device", value: { ...deviceRecord.value, platform: unknown } })],
        [grant, recordPart({ $case: "grant", value: { ...grantRecord.value, granteePlatform: unknown } })],
      ]));
      const target = await ctx.session();
      const first = expectImported(await importRaw(ctx, target.token, untrusted.map((p) => p.bytes)), "importing a bundle with records of an unknown platform, signed by no trusted key");
      checkEqual([first.recordsImported, first.recordsSkipped], [count - 4n, 4n], "records imported and skipped: two account links (untrusted signature), a device and a grant (unknown platform)");
      const { devices } = await target.clients.devices.listDevices({ parent: target.subject, pageSize: 0, pageToken: "" });
      check(!devices.some((d) => d.name === `${target.subject}/devices/${subject.owner.deviceId}`), "a device record of an unknown platform is not imported");
      // The genuine bundle brings what was skipped, and nothing else.
      const second = expectImported(await importRaw(ctx, target.token, parts.map((p) => p.bytes)), "importing the genuine bundle afterwards");
      checkEqual([second.recordsImported, second.recordsSkipped], [4n, count - 4n], "records imported and skipped: now the account links, the device and the grant");
      const owner = await ctx.session({ accountId: subject.owner.accountId });
      checkEqual(owner.subject, target.subject, "the owner's account, imported from a bundle this server signed, belongs to the target subject");
      const other = await ctx.session({ platform: ctx.platforms.b, accountId: subject.other.accountId });
      checkEqual(other.subject, target.subject, "platform b's account, imported, belongs to the target subject");
      const { stream } = await other.clients.streams.getStream({ name: `${target.subject}/streams/list` });
      checkEqual(stream?.type, GRANTED_TYPE, "the imported grant lets platform b read the granted stream");
      const third = expectImported(await importRaw(ctx, target.token, parts.map((p) => p.bytes)), "importing the genuine bundle a third time");
      checkEqual([third.recordsImported, third.recordsSkipped], [0n, count], "a repeated import skips every record");
    },
  }),
  defineCase({
    id: "portability-edges.import-refuses-malformed-records",
    requirements: ["PORT-029", "PORT-023"],
    profile: "portability",
    timeoutMs: 120_000,
    async run(ctx) {
      const subject = await buildEdgeSubject(ctx);
      const parts = await exportOwn(ctx, subject.owner);
      const manifest = manifestOf(parts);
      const notes = streamRecordIndex(parts, "notes");
      const progress = streamRecordIndex(parts, "progress");
      const list = streamRecordIndex(parts, "list");
      const streamRecord = (at: number) => (recordOf(parts[at]!) as Extract<NonNullable<Record_>, { $case: "stream" }>).value;
      const deltaRecord = (at: number) => (recordOf(parts[at]!) as Extract<NonNullable<Record_>, { $case: "delta" }>).value;
      const withSummary = (uid: string, change: Partial<continuity.v1.BundleStreamSummary>): BundlePart => manifestPart({ ...manifest, streams: manifest.streams.map((s) => (s.streamUid === uid ? { ...s, ...change } : s)) });
      const checkpoint = partIndex(parts, "checkpoint", (r) => r.$case === "checkpoint");
      const checkpointRecord = (recordOf(parts[checkpoint]!) as Extract<NonNullable<Record_>, { $case: "checkpoint" }>).value;
      check(recordOf(parts[progress + 1]!)?.$case === "snapshot", "the compacted stream's snapshot record follows its stream record");
      const snapshot = (recordOf(parts[progress + 1]!) as Extract<NonNullable<Record_>, { $case: "snapshot" }>).value;
      check(recordOf(parts[notes + 1]!)?.$case === "delta" && recordOf(parts[list + 1]!)?.$case === "delta", "the deltas of a stream without a horizon follow its stream record");

      /** A JSON delta with another payload, its hash and the stream's head hash (record and manifest) made to match. */
      const withPayload = (streamAt: number, payload: Buffer): Map<number, BundlePart> => {
        const stream = streamRecord(streamAt);
        const delta = deltaRecord(streamAt + 1);
        check(recordOf(parts[streamAt + 2]!)?.$case !== "delta", "the stream has one delta");
        const hash = Buffer.from(deltaHash({ prevHash: delta.prevHash, version: delta.version, encoding: delta.encoding, payload }));
        return new Map([
          [0, withSummary(stream.uid, { headHash: hash })],
          [streamAt, recordPart({ $case: "stream", value: { ...stream, headHash: hash } })],
          [streamAt + 1, recordPart({ $case: "delta", value: { ...delta, payload, hash } })],
        ]);
      };
      const withSnapshotState = (state: Buffer): Map<number, BundlePart> => {
        const header = snapshot.header!;
        return new Map([[progress + 1, recordPart({ $case: "snapshot", value: { header: { ...header, sizeBytes: BigInt(state.length), snapshotHash: Buffer.from(snapshotHash({ streamUid: header.streamUid, version: header.version, headHash: header.headHash, encoding: header.encoding, state })) }, state } })]]);
      };
      const notesStream = streamRecord(notes);
      const progressStream = streamRecord(progress);
      const notesDelta = deltaRecord(notes + 1);
      const record = (at: number) => `records[${at - 1}]`;

      const tampered: { what: string; changes: Map<number, BundlePart>; field: string }[] = [
        {
          what: "a stream id that is not a resource id",
          changes: new Map([
            [0, withSummary(notesStream.uid, { streamId: "Not_An_Id" })],
            [notes, recordPart({ $case: "stream", value: { ...notesStream, name: `${subject.owner.subject}/streams/Not_An_Id` } })],
          ]),
          field: `${record(notes)}.stream.name`,
        },
        {
          what: "a stream type that is not a type name",
          changes: new Map([
            [0, withSummary(progressStream.uid, { type: "not a type" })],
            [progress, recordPart({ $case: "stream", value: { ...progressStream, type: "not a type" } })],
          ]),
          field: `${record(progress)}.stream.type`,
        },
        {
          what: "an owner platform that is not a platform name",
          changes: new Map([[notes, recordPart({ $case: "stream", value: { ...notesStream, ownerPlatform: "nobody" } })]]),
          field: `${record(notes)}.stream.owner_platform`,
        },
        // A platform name inside a longer string is not one (a pattern anchored at one end only).
        {
          what: "an owner platform with a platform name after a prefix",
          changes: new Map([[notes, recordPart({ $case: "stream", value: { ...notesStream, ownerPlatform: `tenants/t/${notesStream.ownerPlatform}` } })]]),
          field: `${record(notes)}.stream.owner_platform`,
        },
        {
          what: "an owner platform with a platform name before a suffix",
          changes: new Map([[notes, recordPart({ $case: "stream", value: { ...notesStream, ownerPlatform: `${notesStream.ownerPlatform}/apps/x` } })]]),
          field: `${record(notes)}.stream.owner_platform`,
        },
        { what: "a JSON snapshot state that is not canonical JSON", changes: withSnapshotState(Buffer.from('{"lesson2":"done","lesson1":"done"}')), field: `${record(progress + 1)}.snapshot.state` },
        { what: "a JSON snapshot state that is not JSON", changes: withSnapshotState(Buffer.from("{lesson1")), field: `${record(progress + 1)}.snapshot.state` },
        { what: "a JSON delta payload that is not canonical JSON", changes: withPayload(list, Buffer.from('[{"path":"/items","op":"add","value":["tea"]}]')), field: `${record(list + 1)}.delta.payload` },
        { what: "a JSON delta payload that is not JSON", changes: withPayload(list, Buffer.from("[{")), field: `${record(list + 1)}.delta.payload` },
        { what: "a JSON Patch delta that cannot be applied to the state before it", changes: withPayload(list, Buffer.from('[{"op":"remove","path":"/missing"}]')), field: `${record(list + 1)}.delta.payload` },
        {
          what: "a delta device that is not a device name",
          changes: new Map([[notes + 1, recordPart({ $case: "delta", value: { ...notesDelta, device: "devices/x" } })]]),
          field: `${record(notes + 1)}.delta.device`,
        },
        {
          what: "a client sequence above 2^53 - 1",
          changes: new Map([[notes + 1, recordPart({ $case: "delta", value: { ...notesDelta, clientSequence: 2n ** 53n } })]]),
          field: `${record(notes + 1)}.delta.client_sequence`,
        },
        {
          what: "a checkpoint id that is not a resource id",
          changes: new Map([[checkpoint, recordPart({ $case: "checkpoint", value: { ...checkpointRecord, name: `${subject.owner.subject}/checkpoints/Not_An_Id` } })]]),
          field: `${record(checkpoint)}.checkpoint.name`,
        },
        {
          what: "a checkpoint digest that does not match its entries and resume payload",
          changes: new Map([[checkpoint, recordPart({ $case: "checkpoint", value: { ...checkpointRecord, digest: Buffer.from(checkpointDigest({ entries: checkpointRecord.entries, resume: { ...checkpointRecord.resume!, position: "elsewhere" } })) } })]]),
          field: `${record(checkpoint)}.checkpoint.digest`,
        },
        {
          what: "a checkpoint device that is not a device name",
          changes: new Map([[checkpoint, recordPart({ $case: "checkpoint", value: { ...checkpointRecord, device: "devices/x" } })]]),
          field: `${record(checkpoint)}.checkpoint.device`,
        },
      ];
      for (const { what, changes, field } of tampered) {
        const target = await ctx.session();
        expectImportError(await importRaw(ctx, target.token, reseal(parts, changes).map((p) => p.bytes)), invalid(field), `importing a bundle with ${what}`);
      }
      // Nothing of a refused record is stored: the stream whose delta could not be applied
      // stays before that delta, and a refused stream record creates no stream.
      const target = await ctx.session();
      expectImportError(await importRaw(ctx, target.token, reseal(parts, withPayload(list, Buffer.from('[{"op":"remove","path":"/missing"}]'))).map((p) => p.bytes)), invalid(`${record(list + 1)}.delta.payload`), "importing a bundle with an inapplicable delta");
      const { streams } = await target.clients.streams.listStreams({ parent: target.subject, pageSize: 0, pageToken: "", type: "" });
      const listed = streams.find((s) => s.name.endsWith("/streams/list"));
      check(listed === undefined || listed.headVersion === 0n, `a delta that cannot be applied must not be stored (the stream's head is ${listed?.headVersion})`);
      const owner = await ctx.session();
      expectImportError(await importRaw(ctx, owner.token, reseal(parts, new Map([[notes, recordPart({ $case: "stream", value: { ...notesStream, ownerPlatform: "nobody" } })]])).map((p) => p.bytes)), invalid(`${record(notes)}.stream.owner_platform`), "importing a bundle with a bad owner platform");
      await expectErrorOf(owner.clients.streams.getStream({ name: `${owner.subject}/streams/notes` }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "the stream whose record was refused");
    },
  }),
  defineCase({
    id: "portability-edges.opaque-horizon-travels",
    requirements: ["PORT-005", "PORT-020", "PORT-003"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const subject = await buildEdgeSubject(ctx);
      const parts = await exportOwn(ctx, subject.owner);
      const canvas = streamRecordIndex(parts, "canvas");
      const stream = (recordOf(parts[canvas]!) as Extract<NonNullable<Record_>, { $case: "stream" }>).value;
      const next = recordOf(parts[canvas + 1]!);
      if (next?.$case !== "snapshot") return fail(`after the stream record of an opaque stream with horizon 2 comes its snapshot record, got ${next?.$case}`);
      const header = next.value.header!;
      checkEqual([header.stream, header.streamUid, header.version, header.encoding, header.sizeBytes], ["", stream.uid, 2n, ENCODING.opaque, BigInt(subject.canvasState.length)], "the opaque snapshot record's header");
      checkBytes(next.value.state, subject.canvasState, "the opaque snapshot record carries the uploaded state");
      checkBytes(header.headHash, stream.horizonHash, "the opaque snapshot's head hash is the horizon hash");
      checkBytes(header.snapshotHash, snapshotHash({ streamUid: stream.uid, version: 2n, headHash: header.headHash, encoding: ENCODING.opaque, state: subject.canvasState }), "the opaque snapshot's snapshot_hash");
      const delta = recordOf(parts[canvas + 2]!);
      checkEqual([delta?.$case, delta?.$case === "delta" ? delta.value.version : undefined, recordOf(parts[canvas + 3]!)?.$case === "delta"], ["delta", 3n, false], "after the snapshot, only the delta above the horizon");
      await subject.owner.clients.subjects.deleteSubject({ name: subject.owner.subject });
      const target = await ctx.session();
      expectImported(await importRaw(ctx, target.token, parts.map((p) => p.bytes)), "importing the bundle");
      const name = `${target.subject}/streams/canvas`;
      const { stream: imported } = await target.clients.streams.getStream({ name });
      checkEqual([imported?.uid, imported?.horizonVersion, imported?.headVersion, imported?.encoding], [stream.uid, 2n, 3n, ENCODING.opaque], "the imported opaque stream");
      checkBytes(imported?.headHash, stream.headHash, "the imported opaque stream's head hash");
      const downloaded = await downloadSnapshot(target, name, 2n);
      checkEqual(downloaded.header.version, 2n, "GetSnapshot at the imported horizon");
      checkBytes(downloaded.state, subject.canvasState, "the imported opaque stream's snapshot at its horizon is the uploaded state");
      const { deltas } = await target.clients.streams.listDeltas({ stream: name, afterVersion: 2n, pageSize: 0, pageToken: "" });
      checkEqual(deltas.map((d) => [d.version, Buffer.from(d.payload).toString()]), [[3n, "r"]], "the imported opaque delta above the horizon");
    },
  }),
  defineCase({
    id: "portability-edges.incremental-import-continues-held-streams",
    requirements: ["PORT-007", "PORT-043", "PORT-042"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const source = await ctx.session();
      const notes = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "notes" });
      for (let seq = 1; seq <= 2; seq++) await append(source, notes.name, [{ [`k${seq}`]: seq }], { clientSequence: seq });
      // Without account links: the source's account stays linked to the source subject here.
      const full = withoutLinks(await exportOwn(ctx, source));
      const copy = await ctx.session();
      expectImported(await importRaw(ctx, copy.token, full.map((p) => p.bytes)), "importing the full bundle into a second subject");
      for (let seq = 3; seq <= 5; seq++) await append(source, notes.name, [{ [`k${seq}`]: seq }], { clientSequence: seq });
      // What the copy lacks, named by the position it holds: three deltas, no snapshot.
      const incremental = withoutLinks(await exportOwn(ctx, source, [{ streamUid: notes.uid, version: 2n }]));
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
      const later = withoutLinks(await exportOwn(ctx, source, [{ streamUid: notes.uid, version: 4n }]));
      expectImportError(await importRaw(ctx, behind.token, later.map((p) => p.bytes)), { code: Status.FAILED_PRECONDITION, reason: "HISTORY_COMPACTED", metadata: { horizonVersion: "2" } }, "an incremental bundle starting after version 4 imported where the stream ends at version 2");
      const { stream: unchanged } = await behind.clients.streams.getStream({ name: `${behind.subject}/streams/notes` });
      checkEqual(unchanged?.headVersion, 2n, "the refused incremental import stored nothing");
    },
  }),
  defineCase({
    id: "portability-edges.incremental-from-the-horizon",
    requirements: ["PORT-051", "PORT-007", "PORT-043", "PORT-042"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      // Streams compacted at the version a receiver holds: a full export of them and an
      // incremental one from that version have the same manifest counts (PORT-051).
      const source = await ctx.session();
      const flat = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "flat" });
      const grown = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "grown" });
      for (const stream of [flat, grown]) {
        for (let seq = 1; seq <= 2; seq++) await append(source, stream.name, [{ [`k${seq}`]: seq }], { clientSequence: seq });
        await source.clients.streams.compactStream({ stream: stream.name, horizonVersion: 2n });
      }
      // Full: a snapshot record follows each stream record, with no delta records after it.
      const full = withoutLinks(await exportOwn(ctx, source));
      checkEqual(full.filter((p) => recordOf(p)?.$case === "snapshot").length, 2, "snapshot records of the full bundle of two streams compacted at their heads");
      const copy = await ctx.session();
      expectImported(await importRaw(ctx, copy.token, full.map((p) => p.bytes)), "importing the full bundle of streams compacted at their heads");
      const { stream: copied } = await copy.clients.streams.getStream({ name: `${copy.subject}/streams/flat` });
      checkEqual([copied?.uid, copied?.headVersion, copied?.horizonVersion], [flat.uid, 2n, 2n], "the imported stream compacted at its head");
      await append(source, grown.name, [{ k3: 3 }], { clientSequence: 3 });
      // Incremental from the horizon: no snapshot record, as many deltas as lie above it.
      const incremental = withoutLinks(await exportOwn(ctx, source, [{ streamUid: flat.uid, version: 2n }, { streamUid: grown.uid, version: 2n }]));
      checkEqual(incremental.filter((p) => recordOf(p)?.$case === "snapshot").length, 0, "snapshot records of the incremental bundle (PORT-007)");
      const summaries = manifestOf(incremental).streams.map((s) => [s.streamId, s.horizonVersion, s.headVersion, s.deltaCount]);
      checkEqual(summaries.sort((a, b) => String(a[0]).localeCompare(String(b[0]))), [["flat", 2n, 2n, 0n], ["grown", 2n, 3n, 1n]], "the incremental bundle's manifest: as many deltas as above each horizon");
      const records = BigInt(incremental.length - 2);
      const counted = expectImported(await importRaw(ctx, copy.token, incremental.map((p) => p.bytes)), "importing an incremental bundle from the horizons the subject holds (PORT-051)");
      checkEqual([counted.recordsImported, counted.recordsSkipped], [1n, records - 1n], "the import stores the one new delta and skips the rest, the two stream records it continues included");
      const { stream: continued } = await copy.clients.streams.getStream({ name: `${copy.subject}/streams/grown` });
      const { stream: original } = await source.clients.streams.getStream({ name: grown.name });
      checkEqual([continued?.uid, continued?.headVersion], [grown.uid, 3n], "the continued stream");
      checkBytes(continued?.headHash, original!.headHash, "the continued stream's head hash equals the source's");
      // Incremental, not a full bundle missing its snapshots: a subject without the streams cannot take it.
      const stranger = await ctx.session();
      expectImportError(await importRaw(ctx, stranger.token, incremental.map((p) => p.bytes)), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "an incremental bundle from the horizon imported into a subject without its streams");
      const { streams: strangers } = await stranger.clients.streams.listStreams({ parent: stranger.subject, pageSize: 0, pageToken: "", type: "" });
      checkEqual(strangers.length, 0, "the refused import created no stream");
    },
  }),
  defineCase({
    id: "portability-edges.export-and-migration-requests-checked",
    requirements: ["PORT-044", "PORT-008", "ISO-001", "PORT-041", "PORT-035"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      const person = await ctx.session();
      const stranger = await ctx.session();
      const exportError = async (name: string, after: continuity.v1.BundleStreamPosition[] = []) => {
        try {
          await exportRaw(ctx, person.token, name, 30_000, after);
        } catch (error) {
          return richErrorOf(EXPORT, error as never);
        }
        return fail(`ExportSubject of ${name} must fail`);
      };
      checkError(await exportError("subjects/"), invalid("name"), "ExportSubject of a malformed name");
      checkError(await exportError(stranger.subject), { code: Status.NOT_FOUND, reason: "SUBJECT_NOT_FOUND" }, "ExportSubject of another subject");
      const own = await exportOwn(ctx, person, [], "subjects/-");
      checkEqual(manifestOf(own).streams.length, 0, "ExportSubject of subjects/- with no streams");
      const create = (request: Partial<continuity.v1.CreateMigrationRequest>) =>
        person.clients.portability.createMigration({ parent: person.subject, source: "127.0.0.1:1", sourceAccessToken: "a-token", sourceSubject: "", ...request });
      await expectErrorOf(create({ parent: "subjects/" }), invalid("parent"), "CreateMigration with a malformed parent");
      await expectErrorOf(create({ parent: stranger.subject }), { code: Status.NOT_FOUND, reason: "SUBJECT_NOT_FOUND" }, "CreateMigration for another subject");
      await expectErrorOf(create({ sourceAccessToken: "" }), invalid("source_access_token"), "CreateMigration without a source access token");
      await expectErrorOf(create({ sourceSubject: "subjects" }), invalid("source_subject"), "CreateMigration with a malformed source subject");
      await expectErrorOf(create({ source: "127.0.0.1" }), invalid("source"), "CreateMigration with a source without a port");
      const migrations = `${person.subject}/migrations`;
      await expectErrorOf(person.clients.portability.getMigration({ name: `${migrations}/` }), invalid("name"), "GetMigration of a malformed name");
      await expectErrorOf(person.clients.portability.getMigration({ name: `${migrations}/no-such-migration` }), { code: Status.NOT_FOUND, reason: "MIGRATION_NOT_FOUND" }, "GetMigration of an unknown migration");
      await expectErrorOf(person.clients.portability.cancelMigration({ name: `${migrations}/no-such-migration` }), { code: Status.NOT_FOUND, reason: "MIGRATION_NOT_FOUND" }, "CancelMigration of an unknown migration");
      await expectErrorOf(person.clients.portability.cancelMigration({ name: "migrations/x" }), invalid("name"), "CancelMigration of a malformed name");
      // Another subject's migration is not found, whatever its id.
      const { migration } = await stranger.clients.portability.createMigration({ parent: stranger.subject, source: "127.0.0.1:1", sourceAccessToken: "a-token", sourceSubject: "" });
      if (migration === undefined) return fail("CreateMigration must return the migration");
      const elsewhere = `${person.subject}/migrations/${streamIdOf(migration.name)}`;
      await expectErrorOf(person.clients.portability.getMigration({ name: migration.name }), { code: Status.NOT_FOUND, reason: ["SUBJECT_NOT_FOUND", "MIGRATION_NOT_FOUND"] }, "GetMigration of another subject's migration");
      await expectErrorOf(person.clients.portability.getMigration({ name: elsewhere }), { code: Status.NOT_FOUND, reason: "MIGRATION_NOT_FOUND" }, "GetMigration of another subject's migration id under the caller's own subject");
      await expectErrorOf(person.clients.portability.cancelMigration({ name: migration.name }), { code: Status.NOT_FOUND, reason: ["SUBJECT_NOT_FOUND", "MIGRATION_NOT_FOUND"] }, "CancelMigration of another subject's migration");
      const ended = await migrationEnded(ctx, stranger.clients, migration.name);
      checkEqual(ended.state, v1.MigrationState.MIGRATION_STATE_FAILED, "a migration from a source that is not listening fails (PORT-035)");
      check(ended.error !== "", "Migration.error says why");
      // Every method needs identity.manage, the migration's own too.
      const limited = await ctx.session({ accountId: person.accountId, scope: "state.read state.write" });
      const scope = { code: Status.PERMISSION_DENIED, reason: "SCOPE_INSUFFICIENT", metadata: { scope: "identity.manage" } } as const;
      await expectErrorOf(limited.clients.portability.createMigration({ parent: person.subject, source: "127.0.0.1:1", sourceAccessToken: "a-token", sourceSubject: "" }), scope, "CreateMigration without identity.manage");
      await expectErrorOf(limited.clients.portability.getMigration({ name: `${migrations}/no-such-migration` }), scope, "GetMigration without identity.manage");
      await expectErrorOf(limited.clients.portability.cancelMigration({ name: `${migrations}/no-such-migration` }), scope, "CancelMigration without identity.manage");
      const transfer = transferRaw(ctx, limited.token);
      transfer.send(begin("subjects/-", "127.0.0.1:2", "subjects/elsewhere"));
      checkError(await transferError(transfer, "TransferSubject without identity.manage"), scope, "TransferSubject without identity.manage");
      transfer.cancel();
      // A host name that does not resolve is a source that cannot be reached (PORT-041, PORT-035).
      const { migration: unresolved } = await person.clients.portability.createMigration({ parent: person.subject, source: "no-such-host.invalid:50051", sourceAccessToken: "a-token", sourceSubject: "" });
      if (unresolved === undefined) return fail("CreateMigration from a source whose name does not resolve must return the migration");
      const failed = await migrationEnded(ctx, person.clients, unresolved.name);
      checkEqual(failed.state, v1.MigrationState.MIGRATION_STATE_FAILED, "a migration from a source whose name does not resolve");
      check(failed.error.includes("no-such-host.invalid"), `Migration.error names the source that could not be resolved, got ${JSON.stringify(failed.error)}`);
      check(failed.endTime !== undefined, "a failed migration has an end_time");
      // The subject named on the source is the one asked for there: another subject's is not
      // found for this token (last: a migration that ignored the name would move the caller's own).
      if (!/^(127\.|\[::1\]|localhost:)/.test(ctx.address())) return;
      const { migration: foreign } = await person.clients.portability.createMigration({ parent: person.subject, source: ctx.address(), sourceAccessToken: person.token, sourceSubject: stranger.subject });
      if (foreign === undefined) return fail("CreateMigration naming another subject on the source must return the migration");
      const refusedThere = await migrationEnded(ctx, person.clients, foreign.name);
      checkEqual(refusedThere.state, v1.MigrationState.MIGRATION_STATE_FAILED, "a migration of a subject the source token may not export (PORT-035)");
      check(refusedThere.error.includes("NOT_FOUND"), `Migration.error names the source's answer (NOT_FOUND), got ${JSON.stringify(refusedThere.error)}`);
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
      await refused([{ step: undefined }], invalid("step"), "TransferSubject whose first request has no step");
      const silent = transferRaw(ctx, source.token);
      silent.end();
      checkError(await transferError(silent, "TransferSubject ended before its first request"), invalid("step"), "TransferSubject ended before its first request");
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
      const heldWrite = append(source, stream.name, [{ n: 2 }], { clientSequence: 2 });
      first.send(begin("subjects/-", "127.0.0.1:2", "subjects/elsewhere"));
      checkError(await transferError(first, "a switch whose second request is begin"), invalid("step"), "TransferSubject whose second request is not commit");
      const acknowledged = await heldWrite;
      checkEqual(acknowledged.headVersion, 2n, "the held write goes ahead once the switch ended without commit");
      // No step at all, or no second request before the target half-closes: not commit either.
      for (const [what, second] of [["a second request with no step", (t: RawTransfer) => t.send({ step: undefined })], ["no second request", (t: RawTransfer) => t.end()]] as const) {
        const unfinished = transferRaw(ctx, source.token, 60_000);
        unfinished.send(begin("subjects/-", "127.0.0.1:2", "subjects/elsewhere"));
        await readTransferBundle(unfinished, `a switch with ${what}`);
        second(unfinished);
        checkError(await transferError(unfinished, `a switch with ${what}`), invalid("step"), `TransferSubject with ${what} after begin`);
      }
      const { stream: still } = await source.clients.streams.getStream({ name: stream.name });
      checkEqual(still?.headVersion, 2n, "the source still serves the subject");

      // After a committed switch, a new one is refused with the redirect.
      const switched = transferRaw(ctx, source.token);
      const began = Date.now();
      switched.send(begin("subjects/-", "127.0.0.1:2", "subjects/elsewhere", [{ streamUid: stream.uid, version: 2n }]));
      const rest = await readTransferBundle(switched, "the committed switch");
      checkEqual(manifestOf(rest).streams.map((s) => s.deltaCount), [0n], "a switch after the target's position brings no delta");
      switched.send({ step: { $case: "commit", value: {} } });
      switched.end();
      const answer = await switched.next();
      const held = Date.now() - began;
      const committed = answer === undefined ? undefined : v1.TransferSubjectResponse.decode(answer).part;
      if (committed?.$case !== "committed") return fail(`TransferSubject answers commit with committed, got ${committed?.$case}`);
      checkPause(committed.value.pause, held, "TransferCommitted.pause");
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
      // Sent raw, with a deadline beyond the 45 s this case waits: the harness bounds unary
      // calls at 10 s, about what a source may hold a write for.
      const held = rawUnaryCall(ctx, "/continuity.v1.StreamService/AppendDeltas", Buffer.from(v1.AppendDeltasRequest.encode(appendRequest(stream.name, [{ n: 2 }], { clientSequence: 2 })).finish()), source.token, 60_000).then((outcome) => {
        if (outcome.response === undefined) return fail(`the held write must succeed once the switch has ended, got ${Status[outcome.code]} ${outcome.details}`);
        return v1.AppendDeltasResponse.decode(outcome.response);
      });
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
  defineCase({
    id: "portability-edges.completed-migration-reports-progress",
    requirements: ["PORT-046", "PORT-030", "PORT-031", "PORT-036"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 120_000,
    async run(ctx) {
      const source = await ctx.session();
      const stream = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "moving" });
      for (let seq = 1; seq <= 4; seq++) await append(source, stream.name, [{ n: seq }], { clientSequence: seq });
      await source.clients.streams.compactStream({ stream: stream.name, horizonVersion: 2n });
      const second = await ctx.startSecondServer();
      const target = await sessionOn(ctx, second, source);
      // Through a proxy that lets everything pass: it reads the pause the source answered.
      const proxy = await startSourceProxy(ctx, "none");
      try {
        const sourceAddress = proxy.address;
        const { migration } = await target.clients.portability.createMigration({ parent: target.subject, source: sourceAddress, sourceAccessToken: source.token, sourceSubject: "" });
        if (migration === undefined) return fail("CreateMigration must return the migration");
        check(new RegExp(`^${target.subject}/migrations/[a-z0-9][a-z0-9-]{0,63}$`).test(migration.name), `Migration.name must be ${target.subject}/migrations/{migration}, got ${migration.name}`);
        checkEqual([migration.source, migration.error, migration.endTime], [sourceAddress, "", undefined], "CreateMigration's migration: its source as named, no error, no end time");
        check(migration.createTime !== undefined, "Migration.create_time is set");
        const ended = await migrationEnded(ctx, target.clients, migration.name, 90_000);
        if (ended.state !== v1.MigrationState.MIGRATION_STATE_COMPLETED) return fail(`the migration must complete, got state ${ended.state}: ${ended.error}`);
        // Stream record, snapshot at the horizon, two deltas at the least; identity records besides.
        check(ended.recordsCopied >= 4n, `records_copied of a completed migration counts every record copied, got ${ended.recordsCopied}`);
        checkEqual(ended.recordsTotal, ended.recordsCopied, "records_total of a completed migration equals records_copied");
        check(ended.bytesCopied > 0n, "bytes_copied of a completed migration is above 0");
        checkEqual([ended.lagDeltas, ended.error, ended.sourceSubject, ended.source], [0n, "", source.subject, sourceAddress], "a completed migration: no lag, no error, the source subject as the source named it");
        checkPause(ended.switchPause, (ended.endTime?.getTime() ?? 0) - (ended.createTime?.getTime() ?? 0) + 1000, "switch_pause of a completed migration");
        const answered = proxy.switches.find((s) => s.committed)?.pause;
        checkEqual([ended.switchPause?.seconds, ended.switchPause?.nanos], [answered?.seconds, answered?.nanos], "switch_pause of a completed migration is the pause the source's committed answer gave");
        check(ended.endTime !== undefined && ended.createTime !== undefined && ended.endTime.getTime() >= ended.createTime.getTime(), "end_time of a completed migration is set, not before create_time");
        const { stream: moved } = await target.clients.streams.getStream({ name: `${target.subject}/streams/moving` });
        checkEqual([moved?.uid, moved?.horizonVersion, moved?.headVersion], [stream.uid, 2n, 4n], "the migrated stream keeps its uid, horizon and head");
        // An ended migration holds no lock: another may be created (and ends the same way).
        const { migration: again } = await target.clients.portability.createMigration({ parent: target.subject, source: sourceAddress, sourceAccessToken: source.token, sourceSubject: source.subject });
        if (again === undefined) return fail("CreateMigration after a completed one must return the migration");
        const failed = await migrationEnded(ctx, target.clients, again.name, 90_000);
        checkEqual(failed.state, v1.MigrationState.MIGRATION_STATE_FAILED, "a migration from a source where the subject moved fails");
        check(failed.error.includes("SUBJECT_MOVED") || failed.error.includes("moved"), `Migration.error names the source's answer, got ${JSON.stringify(failed.error)}`);
      } finally {
        proxy.close();
      }
    },
  }),
  defineCase({
    id: "portability-edges.imported-records-keep-their-fields",
    requirements: ["PORT-047", "PORT-028", "PORT-003"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const subject = await buildEdgeSubject(ctx);
      const parts = await exportOwn(ctx, subject.owner);
      await subject.owner.clients.subjects.deleteSubject({ name: subject.owner.subject });
      const target = await ctx.session();
      expectImported(await importRaw(ctx, target.token, parts.map((p) => p.bytes)), "importing the bundle");
      const other = await ctx.session({ platform: ctx.platforms.b, accountId: subject.other.accountId });
      const local = (name: string): string => (name === "" ? "" : `${target.subject}/${name.split("/").slice(2).join("/")}`);
      const ms = (date: Date | undefined) => date?.getTime();
      const records = parts.flatMap((part) => {
        const record = recordOf(part);
        return record === undefined ? [] : [record];
      });
      // Deltas: every field as the bundle carries it, the device named in the target subject.
      const streams = records.flatMap((r) => (r.$case === "stream" ? [r.value] : []));
      for (const stream of streams) {
        const exported = records.flatMap((r) => (r.$case === "delta" && r.value.streamUid === stream.uid ? [r.value] : []));
        const reader = stream.ownerPlatform === `platforms/${target.platform.id}` ? target : other;
        const { deltas } = await reader.clients.streams.listDeltas({ stream: `${target.subject}/streams/${streamIdOf(stream.name)}`, afterVersion: stream.horizonVersion, pageSize: 0, pageToken: "" });
        const fields = (d: continuity.v1.Delta, device: string) => [d.version, hex(d.payload), hex(d.prevHash), hex(d.hash), device, d.clientSequence, d.batchFirstVersion, d.batchSize, ms(d.commitTime)];
        checkEqual(deltas.map((d) => fields(d, d.device)), exported.map((d) => fields(d, local(d.device))), `ListDeltas of imported stream ${streamIdOf(stream.name)}: version, payload, hashes, device, client_sequence, batch fields, commit_time`);
        const { stream: imported } = await reader.clients.streams.getStream({ name: `${target.subject}/streams/${streamIdOf(stream.name)}` });
        checkEqual(ms(imported?.createTime), ms(stream.createTime), `create_time of imported stream ${streamIdOf(stream.name)} (PORT-020: its stream record's)`);
      }
      // Account links (from a bundle this server signed, so imported): each as its record says.
      const exportedLinks = records.flatMap((r) => (r.$case === "accountLink" ? [r.value] : []));
      checkEqual(exportedLinks.length, 2, "account link records in the bundle");
      const { accountLinks } = await target.clients.subjects.listAccountLinks({ parent: target.subject, pageSize: 0, pageToken: "" });
      const linkFields = (l: continuity.v1.AccountLink) => [l.platform, l.accountId, ms(l.createTime)];
      const importedLinks = accountLinks.filter((l) => exportedLinks.some((e) => e.platform === l.platform && e.accountId === l.accountId));
      checkEqual(importedLinks.map(linkFields).sort(), exportedLinks.map(linkFields).sort(), "ListAccountLinks on the target: each imported account link with its platform, account_id and create_time");
      // The checkpoint: its device, platform and creation time too.
      for (const record of records) {
        if (record.$case !== "checkpoint") continue;
        const { checkpoint } = await target.clients.checkpoints.getCheckpoint({ name: local(record.value.name) });
        checkEqual([checkpoint?.device, checkpoint?.platform, ms(checkpoint?.createTime)], [local(record.value.device), record.value.platform, ms(record.value.createTime)], `imported checkpoint ${record.value.name}: device, platform, create_time`);
      }
      // Devices, the revoked one included, as each platform lists its own.
      const exportedDevices = records.flatMap((r) => (r.$case === "device" ? [r.value] : []));
      check(exportedDevices.some((d) => d.revokeTime !== undefined), "the bundle carries the revoked device");
      for (const session of [target, other]) {
        const { devices } = await session.clients.devices.listDevices({ parent: target.subject, pageSize: 0, pageToken: "" });
        for (const exported of exportedDevices.filter((d) => d.platform === `platforms/${session.platform.id}`)) {
          const found = devices.find((d) => d.name === local(exported.name));
          if (found === undefined) return fail(`imported device ${exported.name} is listed on the target`);
          checkEqual([found.displayName, found.platform, found.state, ms(found.createTime), ms(found.revokeTime)], [exported.displayName, exported.platform, exported.state, ms(exported.createTime), ms(exported.revokeTime)], `imported device ${exported.name}: display_name, platform, state, create_time, revoke_time`);
        }
      }
      // Grants: the active ones as they were, the read-write one still read-write.
      const { grants } = await target.clients.consent.listGrants({ parent: target.subject, pageSize: 0, pageToken: "" });
      const active = records.flatMap((r) => (r.$case === "grant" && r.value.revokeTime === undefined ? [r.value] : []));
      const grantFields = (g: continuity.v1.Grant) => [g.name, g.grantorPlatform, g.granteePlatform, g.streamType, g.access, ms(g.createTime)];
      checkEqual(grants.map(grantFields).sort(), active.map((g) => grantFields({ ...g, name: local(g.name) })).sort(), "ListGrants on the target: each imported grant with its grantor, grantee, type, access and create_time");
      check(active.some((g) => g.access === v1.GrantAccess.GRANT_ACCESS_READ_WRITE), "the bundle carries the read-write grant");
    },
  }),
  defineCase({
    id: "portability-edges.import-refuses-conflicting-streams",
    requirements: ["PORT-048", "PORT-043", "PORT-049", "PORT-024"],
    profile: "portability",
    timeoutMs: 120_000,
    async run(ctx) {
      const subject = await buildEdgeSubject(ctx);
      // Without account links, so the bundles can go into other subjects of this server.
      const parts = withoutLinks(await exportOwn(ctx, subject.owner));
      const notes = streamRecordIndex(parts, "notes");
      const progress = streamRecordIndex(parts, "progress");
      const canvas = streamRecordIndex(parts, "canvas");
      const stream = (bundle: readonly BundlePart[], at: number) => (recordOf(bundle[at]!) as Extract<NonNullable<Record_>, { $case: "stream" }>).value;
      const withSummary = (bundle: readonly BundlePart[], uid: string, change: Partial<continuity.v1.BundleStreamSummary>): BundlePart => {
        const m = manifestOf(bundle);
        return manifestPart({ ...m, streams: m.streams.map((s) => (s.streamUid === uid ? { ...s, ...change } : s)) });
      };
      const notesStream = stream(parts, notes);
      /** A JSON Merge Patch stream's snapshot record as a JSON Patch stream's (its hash made to match). */
      const asJsonPatch = (part: BundlePart): BundlePart => {
        const snapshot = (recordOf(part) as Extract<NonNullable<Record_>, { $case: "snapshot" }>).value;
        const header = { ...snapshot.header!, encoding: ENCODING.jsonPatch };
        return recordPart({ $case: "snapshot", value: { header: { ...header, snapshotHash: Buffer.from(snapshotHash({ streamUid: header.streamUid, version: header.version, headHash: header.headHash, encoding: header.encoding, state: snapshot.state })) }, state: snapshot.state } });
      };
      const otherPolicy = notesStream.conflictPolicy === v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND ? v1.ConflictPolicy.CONFLICT_POLICY_REQUIRE_EXPECTED_VERSION : v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND;
      const holder = await ctx.session();
      expectImported(await importRaw(ctx, holder.token, parts.map((p) => p.bytes)), "importing the bundle");
      const exists = { code: Status.ALREADY_EXISTS, reason: "STREAM_ALREADY_EXISTS" } as const;
      const conflicting: { what: string; bundle: BundlePart[] }[] = [
        {
          what: "a stream the subject holds under another stream id",
          bundle: reseal(parts, new Map([
            [0, withSummary(parts, notesStream.uid, { streamId: "notes-moved" })],
            [notes, recordPart({ $case: "stream", value: { ...notesStream, name: `${subject.owner.subject}/streams/notes-moved` } })],
          ])),
        },
        { what: "a stream the subject holds with another conflict policy", bundle: reseal(parts, new Map([[notes, recordPart({ $case: "stream", value: { ...notesStream, conflictPolicy: otherPolicy } })]])) },
        {
          what: "a stream the subject holds with another type",
          bundle: reseal(parts, new Map([
            [0, withSummary(parts, stream(parts, progress).uid, { type: "org.example.other-type" })],
            [progress, recordPart({ $case: "stream", value: { ...stream(parts, progress), type: "org.example.other-type" } })],
          ])),
        },
        // The stream has a horizon, so only its snapshot (not a genesis hash) follows its encoding.
        { what: "a stream the subject holds with another encoding", bundle: reseal(parts, new Map([[progress, recordPart({ $case: "stream", value: { ...stream(parts, progress), encoding: ENCODING.jsonPatch } })], [progress + 1, asJsonPatch(parts[progress + 1]!)]])) },
      ];
      for (const { what, bundle } of conflicting) expectImportError(await importRaw(ctx, holder.token, bundle.map((p) => p.bytes)), exists, `importing ${what}`);
      const { stream: kept } = await holder.clients.streams.getStream({ name: `${holder.subject}/streams/notes` });
      checkEqual([kept?.uid, kept?.conflictPolicy], [notesStream.uid, notesStream.conflictPolicy], "the held stream is unchanged by the refused imports");
      await expectErrorOf(holder.clients.streams.getStream({ name: `${holder.subject}/streams/notes-moved` }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "the stream id of a refused stream record");

      // Incremental bundles: after the held position of notes.
      await append(subject.owner, `${subject.owner.subject}/streams/notes`, [{ c: 3 }], { clientSequence: 3 });
      const progressStream = stream(parts, progress);
      await append(subject.owner, `${subject.owner.subject}/streams/progress`, [{ lesson4: "done" }], { clientSequence: 4 });
      // Of a stream with a horizon: a stream without one is bound to its type and encoding by its genesis hash.
      const progressInc = withoutLinks(await exportOwn(ctx, subject.owner, [{ streamUid: notesStream.uid, version: 3n }, { streamUid: progressStream.uid, version: 3n }]));
      const incProgress = streamRecordIndex(progressInc, "progress");
      const changedRecord = (change: Partial<continuity.v1.Stream>) => new Map([[incProgress, recordPart({ $case: "stream", value: { ...stream(progressInc, incProgress), ...change } })]]);
      expectImportError(
        await importRaw(ctx, holder.token, reseal(progressInc, new Map([...changedRecord({ type: "org.example.other-type" }), [0, withSummary(progressInc, progressStream.uid, { type: "org.example.other-type" })]])).map((p) => p.bytes)),
        exists,
        "an incremental bundle continuing a stream the subject holds with another type",
      );
      expectImportError(await importRaw(ctx, holder.token, reseal(progressInc, changedRecord({ encoding: ENCODING.jsonPatch })).map((p) => p.bytes)), exists, "an incremental bundle continuing a stream the subject holds with another encoding");
      const incremental = withoutLinks(await exportOwn(ctx, subject.owner, [{ streamUid: notesStream.uid, version: 2n }]));
      const incNotes = streamRecordIndex(incremental, "notes");
      expectImportError(
        await importRaw(ctx, holder.token, reseal(incremental, new Map([[incNotes, recordPart({ $case: "stream", value: { ...stream(incremental, incNotes), conflictPolicy: otherPolicy } })]])).map((p) => p.bytes)),
        exists,
        "an incremental bundle continuing a stream the subject holds with another conflict policy",
      );
      const sameId = await ctx.session();
      await createStream(ctx, sameId, { encoding: ENCODING.mergePatch, streamId: "notes" });
      expectImportError(await importRaw(ctx, sameId.token, incremental.map((p) => p.bytes)), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "an incremental bundle for a stream id the subject holds with another uid");
      // A subject whose notes end at version 2 with another history: the increment does not continue it.
      const forked = await ctx.session();
      const delta2 = notes + 2;
      const second = (recordOf(parts[delta2]!) as Extract<NonNullable<Record_>, { $case: "delta" }>).value;
      checkEqual(second.version, 2n, "the second delta of notes");
      const payload = Buffer.from('{"b":20}');
      const hash = Buffer.from(deltaHash({ prevHash: second.prevHash, version: 2n, encoding: second.encoding, payload }));
      const fork = reseal(parts, new Map([
        [0, withSummary(parts, notesStream.uid, { headHash: hash })],
        [notes, recordPart({ $case: "stream", value: { ...notesStream, headHash: hash } })],
        [delta2, recordPart({ $case: "delta", value: { ...second, payload, hash } })],
      ]));
      expectImported(await importRaw(ctx, forked.token, fork.map((p) => p.bytes)), "importing a bundle with another version 2 of notes");
      // The genuine bundle's version 2 (not its first delta, which the subject holds alike) is named.
      expectImportError(await importRaw(ctx, forked.token, parts.map((p) => p.bytes)), invalid(`records[${delta2 - 1}].delta.prev_hash`), "a bundle whose version 2 of notes differs from the one the subject holds");
      const first = partIndex(incremental, "first new delta of notes", (r) => r.$case === "delta" && r.value.streamUid === notesStream.uid);
      expectImportError(await importRaw(ctx, forked.token, incremental.map((p) => p.bytes)), invalid(`records[${first - 1}].delta.prev_hash`), "an incremental bundle whose first delta does not continue the history the subject holds");
      const { stream: unmoved } = await forked.clients.streams.getStream({ name: `${forked.subject}/streams/notes` });
      checkEqual(unmoved?.headVersion, 2n, "nothing of the refused increment is stored");

      // A delta above max_delta_bytes is refused like an append of it.
      const canvasStream = stream(parts, canvas);
      const last = canvas + 2;
      const big = (recordOf(parts[last]!) as Extract<NonNullable<Record_>, { $case: "delta" }>).value;
      const bigPayload = Buffer.alloc(Number(ctx.limits.maxDeltaBytes) + 1, 7);
      const bigHash = Buffer.from(deltaHash({ prevHash: big.prevHash, version: big.version, encoding: big.encoding, payload: bigPayload }));
      const oversized = reseal(parts, new Map([
        [0, withSummary(parts, canvasStream.uid, { headHash: bigHash })],
        [canvas, recordPart({ $case: "stream", value: { ...canvasStream, headHash: bigHash } })],
        [last, recordPart({ $case: "delta", value: { ...big, payload: bigPayload, hash: bigHash } })],
      ]));
      const fresh = await ctx.session();
      expectImportError(await importRaw(ctx, fresh.token, oversized.map((p) => p.bytes)), { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE", metadata: { limit: String(ctx.limits.maxDeltaBytes), index: String(last - 1) } }, "a bundle with a delta above max_delta_bytes");
      const exactPayload = Buffer.alloc(Number(ctx.limits.maxDeltaBytes), 7);
      const exactHash = Buffer.from(deltaHash({ prevHash: big.prevHash, version: big.version, encoding: big.encoding, payload: exactPayload }));
      const exact = reseal(parts, new Map([
        [0, withSummary(parts, canvasStream.uid, { headHash: exactHash })],
        [canvas, recordPart({ $case: "stream", value: { ...canvasStream, headHash: exactHash } })],
        [last, recordPart({ $case: "delta", value: { ...big, payload: exactPayload, hash: exactHash } })],
      ]));
      expectImported(await importRaw(ctx, fresh.token, exact.map((p) => p.bytes)), "a bundle with a delta of exactly max_delta_bytes");
      const { stream: exactStream } = await fresh.clients.streams.getStream({ name: `${fresh.subject}/streams/canvas` });
      checkBytes(exactStream?.headHash, exactHash, "the stream whose last delta is exactly max_delta_bytes, imported");
    },
  }),
  defineCase({
    id: "portability-edges.refusals-explain-themselves",
    requirements: ["ERR-007"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const messages: { what: string; message: string }[] = [];
      const refusal = (error: unknown, expected: ExpectedError, what: string): void => {
        messages.push({ what, message: checkError(error, expected, what).message });
      };
      const importRefusal = async (token: string, bundle: readonly BundlePart[], expected: ExpectedError, what: string): Promise<void> => {
        const outcome = await importRaw(ctx, token, bundle.map((p) => p.bytes));
        if (outcome.ok) return fail(`${what}: the import must fail`);
        refusal(richErrorOf(IMPORT, outcome.error), expected, what);
      };
      const callRefusal = async (call: Promise<unknown>, expected: ExpectedError, what: string): Promise<void> => {
        try {
          await call;
        } catch (error) {
          refusal(error, expected, what);
          return;
        }
        fail(`${what}: the call must fail`);
      };
      const source = await ctx.session();
      const notes = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "notes" });
      for (let seq = 1; seq <= 2; seq++) await append(source, notes.name, [{ [`k${seq}`]: seq }], { clientSequence: seq });
      const genuine = await exportOwn(ctx, source);
      const parts = withoutLinks(genuine);
      const at = streamRecordIndex(parts, "notes");
      const record = (recordOf(parts[at]!) as Extract<NonNullable<Record_>, { $case: "stream" }>).value;
      const summary = (change: Partial<continuity.v1.BundleStreamSummary>): BundlePart => manifestPart({ ...manifestOf(parts), streams: manifestOf(parts).streams.map((s) => ({ ...s, ...change })) });
      const exists = { code: Status.ALREADY_EXISTS, reason: "STREAM_ALREADY_EXISTS" } as const;
      await importRefusal((await ctx.session()).token, genuine, { code: Status.FAILED_PRECONDITION, reason: "ACCOUNT_LINKED_ELSEWHERE" }, "ImportBundle of accounts linked to another subject");
      const taken = await ctx.session();
      await createStream(ctx, taken, { streamId: "notes" });
      await importRefusal(taken.token, parts, exists, "ImportBundle of a stream whose id is taken");
      const holder = await ctx.session();
      expectImported(await importRaw(ctx, holder.token, parts.map((p) => p.bytes)), "importing the bundle");
      const otherPolicy = record.conflictPolicy === v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND ? v1.ConflictPolicy.CONFLICT_POLICY_REQUIRE_EXPECTED_VERSION : v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND;
      await importRefusal(holder.token, reseal(parts, new Map([[at, recordPart({ $case: "stream", value: { ...record, conflictPolicy: otherPolicy } })]])), exists, "ImportBundle of a held stream with another conflict policy");
      await importRefusal(holder.token, reseal(parts, new Map([[0, summary({ streamId: "moved" })], [at, recordPart({ $case: "stream", value: { ...record, name: `${source.subject}/streams/moved` } })]])), exists, "ImportBundle of a held stream under another id");
      for (let seq = 3; seq <= 4; seq++) await append(source, notes.name, [{ [`k${seq}`]: seq }], { clientSequence: seq });
      const incremental = withoutLinks(await exportOwn(ctx, source, [{ streamUid: notes.uid, version: 2n }]));
      const incAt = streamRecordIndex(incremental, "notes");
      const incRecord = (recordOf(incremental[incAt]!) as Extract<NonNullable<Record_>, { $case: "stream" }>).value;
      await importRefusal(holder.token, reseal(incremental, new Map([[incAt, recordPart({ $case: "stream", value: { ...incRecord, conflictPolicy: otherPolicy } })]])), exists, "ImportBundle continuing a held stream with another conflict policy");
      await importRefusal((await ctx.session()).token, incremental, { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "ImportBundle continuing a stream the subject does not hold");
      const later = withoutLinks(await exportOwn(ctx, source, [{ streamUid: notes.uid, version: 3n }]));
      await importRefusal(holder.token, later, { code: Status.FAILED_PRECONDITION, reason: "HISTORY_COMPACTED" }, "ImportBundle continuing a stream after where it ends here");
      await callRefusal(holder.clients.portability.getMigration({ name: `${holder.subject}/migrations/no-such-migration` }), { code: Status.NOT_FOUND, reason: "MIGRATION_NOT_FOUND" }, "GetMigration of an unknown migration");

      // A second switch while one holds the subject, and a switch after the move.
      const first = transferRaw(ctx, source.token);
      first.send(begin("subjects/-", "127.0.0.1:2", "subjects/elsewhere"));
      await readTransferBundle(first, "the switch");
      const second = transferRaw(ctx, source.token);
      second.send(begin("subjects/-", "127.0.0.1:3", "subjects/elsewhere"));
      refusal(await transferError(second, "a second switch"), { code: Status.FAILED_PRECONDITION, reason: "MIGRATION_CONFLICT" }, "TransferSubject while another holds the subject");
      second.cancel();
      first.send({ step: { $case: "commit", value: {} } });
      first.end();
      const committed = await first.next();
      check(committed !== undefined && v1.TransferSubjectResponse.decode(committed).part?.$case === "committed", "TransferSubject answers commit with committed");
      await callRefusal(source.clients.streams.getStream({ name: notes.name }), { code: Status.FAILED_PRECONDITION, reason: "SUBJECT_MOVED" }, "GetStream of a subject that moved");
      const moved = transferRaw(ctx, source.token);
      moved.send(begin("subjects/-", "127.0.0.1:3", "subjects/elsewhere"));
      refusal(await transferError(moved, "a switch after the move"), { code: Status.FAILED_PRECONDITION, reason: "SUBJECT_MOVED" }, "TransferSubject of a subject that moved");
      moved.cancel();

      // A migration that is still copying (its source never answers) conflicts with a second one.
      const sockets = new Set<Socket>();
      const blackHole = createNetServer((socket) => {
        sockets.add(socket);
        socket.on("error", () => undefined);
      });
      await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
      try {
        const person = await ctx.session();
        const create = () => person.clients.portability.createMigration({ parent: person.subject, source: `127.0.0.1:${(blackHole.address() as { port: number }).port}`, sourceAccessToken: "a-token", sourceSubject: "" });
        const { migration } = await create();
        await callRefusal(create(), { code: Status.FAILED_PRECONDITION, reason: "MIGRATION_CONFLICT" }, "CreateMigration while another is copying");
        if (migration !== undefined) await person.clients.portability.cancelMigration({ name: migration.name });
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => blackHole.close(() => resolve()));
      }
      const bad = messages.filter(({ message }) => !/[A-Za-z]{2,}\W+[A-Za-z]{2,}/.test(message)).map(({ what, message }) => `${what}: ${JSON.stringify(message)}`);
      if (bad.length > 0) fail(`status messages that say nothing to a developer:\n${bad.join("\n")}`);
    },
  }),
  defineCase({
    id: "portability-edges.import-takes-records-as-written",
    requirements: ["PORT-050", "PORT-047", "PORT-049", "PORT-020", "PORT-022", "PORT-029"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const source = await ctx.session();
      const edits = await createStream(ctx, source, { encoding: ENCODING.jsonPatch, streamId: "edits" });
      for (let seq = 1; seq <= 3; seq++) await append(source, edits.name, [[{ op: "add", path: `/k${seq}`, value: seq }]], { clientSequence: seq });
      // More deltas than an importer would store in one transaction (the reference server stores 256 at a time).
      const long = await createStream(ctx, source, { encoding: ENCODING.opaque, streamId: "long" });
      const perAppend = Math.min(ctx.limits.maxBatchDeltas, 100);
      for (let written = 0, seq = 1; written < 300; written += perAppend, seq++) {
        await append(source, long.name, Array.from({ length: Math.min(perAppend, 300 - written) }, (_, i) => Buffer.from([(written + i) % 256])), { clientSequence: seq });
      }
      await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "empty" });
      await source.clients.checkpoints.createCheckpoint({ parent: source.subject, checkpointId: "mark", streams: [{ stream: edits.name }], resume: { activityType: "org.example.edit", resource: "r", position: "p", fallbackUrl: "", attributes: {} } });
      const parts = withoutLinks(await exportOwn(ctx, source));
      const count = trailerOf(parts).recordCount;
      const at = streamRecordIndex(parts, "edits");
      const longAt = streamRecordIndex(parts, "long");
      type DeltaValue = continuity.v1.Delta;
      const deltaOf = (index: number, version: bigint): DeltaValue => {
        const record = recordOf(parts[index]!);
        if (record?.$case !== "delta" || record.value.version !== version) return fail(`record ${index - 1} of the bundle must be delta ${version}, got ${record?.$case}`);
        return record.value;
      };
      /** The bundle with the last delta of a stream (at record `index`) replaced by `payload`, its hash and the head hashes made to match. */
      const withLastPayload = (streamAt: number, index: number, version: bigint, payload: Buffer): Map<number, BundlePart> => {
        const delta = deltaOf(index, version);
        const hash = Buffer.from(deltaHash({ prevHash: delta.prevHash, version: delta.version, encoding: delta.encoding, payload }));
        const stream = (recordOf(parts[streamAt]!) as Extract<NonNullable<Record_>, { $case: "stream" }>).value;
        const manifest = manifestOf(parts);
        return new Map([
          [0, manifestPart({ ...manifest, streams: manifest.streams.map((s) => (s.streamUid === stream.uid ? { ...s, headHash: hash } : s)) })],
          [streamAt, recordPart({ $case: "stream", value: { ...stream, headHash: hash } })],
          [index, recordPart({ $case: "delta", value: { ...delta, payload, hash } })],
        ]);
      };

      // A bundle cut short is refused, and what the call stored stays: the whole bundle completes it.
      const target = await ctx.session();
      expectImportError(await importRaw(ctx, target.token, []), invalid("manifest"), "ImportBundle of no part at all");
      expectImportError(await importRaw(ctx, target.token, parts.slice(0, -1).map((p) => p.bytes)), invalid("trailer"), "ImportBundle of a bundle that ends before its trailer");
      const completed = expectImported(await importRaw(ctx, target.token, parts.map((p) => p.bytes)), "the whole bundle after a call that ended before its trailer");
      checkEqual(completed.recordsImported + completed.recordsSkipped, count, "records imported and skipped add up to the record count");
      check(completed.recordsSkipped > 0n, "what the call cut short stored is kept (its records are skipped the second time)");
      for (const summary of manifestOf(parts).streams) {
        const { stream } = await target.clients.streams.getStream({ name: `${target.subject}/streams/${summary.streamId}` });
        const { stream: original } = await source.clients.streams.getStream({ name: `${source.subject}/streams/${summary.streamId}` });
        checkEqual([stream?.uid, stream?.headVersion, hex(stream?.headHash), stream?.createTime?.getTime()], [summary.streamUid, summary.headVersion, hex(summary.headHash), original?.createTime?.getTime()], `imported stream ${summary.streamId}: uid, head version, head hash, create_time`);
      }
      const empty = await downloadSnapshot(target, `${target.subject}/streams/empty`);
      checkEqual(Buffer.from(empty.state).toString(), "{}", "the state of an imported JSON stream without deltas");

      // The third of three JSON Patch deltas cannot be applied: the refusal names that record.
      expectImportError(
        await importRaw(ctx, (await ctx.session()).token, reseal(parts, withLastPayload(at, at + 3, 3n, Buffer.from(canonicalJson([{ op: "remove", path: "/missing" }])))).map((p) => p.bytes)),
        invalid(`records[${at + 2}].delta.payload`),
        "a bundle whose third JSON Patch delta of a stream cannot be applied",
      );
      // A small patch whose copies insert more than max_delta_bytes (LIMIT-021).
      const doubling = [{ op: "add", path: "/a", value: [0] }, ...Array.from({ length: 40 }, () => ({ op: "copy", from: "/a", path: "/a/-" }))];
      const stateBound = Number(ctx.limits.maxSnapshotBytes) <= 4 * ctx.limits.maxDeltaBytes;
      expectImportError(
        await importRaw(ctx, (await ctx.session()).token, reseal(parts, withLastPayload(at, at + 3, 3n, Buffer.from(canonicalJson(doubling)))).map((p) => p.bytes)),
        stateBound
          ? { code: Status.RESOURCE_EXHAUSTED, reason: "SNAPSHOT_TOO_LARGE" }
          : { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE", metadata: { limit: String(ctx.limits.maxDeltaBytes), index: String(at + 2) } },
        "a bundle with a JSON Patch delta of 40 self-doubling copies",
      );
      // A delta that moves 0.6 × max_delta_bytes to a deeper place twice (LIMIT-023), and one
      // that removes items at the front of an array it adds until more than max_snapshot_bytes
      // items have shifted (LIMIT-024), where one delta can hold that many.
      const max = ctx.limits.maxDeltaBytes;
      const bound = Number(ctx.limits.maxSnapshotBytes);
      const lastPatch = (patch: unknown[]) => reseal(parts, withLastPayload(at, at + 3, 3n, Buffer.from(canonicalJson(patch)))).map((p) => p.bytes);
      if (bound >= 2 * max) {
        const carried = "y".repeat(Math.floor(max * 0.6) - 2);
        const down = { op: "move", from: "/s", path: "/d/s" };
        expectImportError(
          await importRaw(ctx, (await ctx.session()).token, lastPatch([{ op: "add", path: "/s", value: carried }, { op: "add", path: "/d", value: {} }, down, { op: "move", from: "/d/s", path: "/s" }, down])),
          { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE", metadata: { limit: String(max), index: String(at + 2) } },
          "a bundle with a JSON Patch delta whose moves to a deeper place carry 1.2 × max_delta_bytes",
        );
      }
      // The state before the replaced delta holds {"k1":1,"k2":2}: room for that and more.
      const items = Math.min(Math.floor((max - 64) / 4), Math.floor((bound - 48) / 2));
      const removals = Math.floor((max - 64) / 2 / 31);
      if (items > removals && removals * items - (removals * (removals + 1)) / 2 > bound) {
        expectImportError(
          await importRaw(ctx, (await ctx.session()).token, lastPatch([{ op: "add", path: "/l", value: Array.from({ length: items }, () => 0) }, ...Array.from({ length: removals }, () => ({ op: "remove", path: "/l/0" }))])),
          { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE", metadata: { limit: String(bound), index: String(at + 2) } },
          `a bundle with a JSON Patch delta whose ${removals} removals at the front of ${items} items shift more than max_snapshot_bytes items`,
        );
      } else ctx.note("LIMIT-024 on import not probed: one delta within max_delta_bytes cannot shift max_snapshot_bytes items");

      // Records as a conformant exporter may write them: a delta without a device (its client
      // sequence then counts for nothing), a client sequence of 2^53 - 1, a delta of exactly
      // max_delta_bytes, a checkpoint without a device or a resume payload.
      const first = deltaOf(at + 1, 1n);
      const second = deltaOf(at + 2, 2n);
      const checkpointAt = partIndex(parts, "checkpoint", (r) => r.$case === "checkpoint");
      const checkpoint = (recordOf(parts[checkpointAt]!) as Extract<NonNullable<Record_>, { $case: "checkpoint" }>).value;
      const exact = Buffer.alloc(Number(ctx.limits.maxDeltaBytes), 5);
      const changes = withLastPayload(longAt, longAt + 300, 300n, exact);
      changes.set(at + 1, recordPart({ $case: "delta", value: { ...first, device: "", clientSequence: 5n } }));
      changes.set(at + 2, recordPart({ $case: "delta", value: { ...second, clientSequence: 2n ** 53n - 1n } }));
      changes.set(checkpointAt, recordPart({ $case: "checkpoint", value: { ...checkpoint, device: "", resume: undefined, digest: Buffer.from(checkpointDigest({ entries: checkpoint.entries, resume: undefined })) } }));
      const keeper = await ctx.session();
      expectImported(await importRaw(ctx, keeper.token, reseal(parts, changes).map((p) => p.bytes)), "a bundle with a deviceless delta, a client sequence of 2^53 - 1, a delta of max_delta_bytes and a checkpoint without device or resume payload");
      const { deltas } = await keeper.clients.streams.listDeltas({ stream: `${keeper.subject}/streams/edits`, afterVersion: 0n, pageSize: 2, pageToken: "" });
      checkEqual(deltas.map((d) => [d.version, d.device, d.clientSequence]), [[1n, "", 0n], [2n, `${keeper.subject}/${second.device.split("/").slice(2).join("/")}`, 2n ** 53n - 1n]], "ListDeltas: a delta imported without a device has client_sequence 0; one of 2^53 - 1 keeps it");
      const { stream: longStream } = await keeper.clients.streams.getStream({ name: `${keeper.subject}/streams/long` });
      checkBytes(longStream?.headHash, (changes.get(longAt)!.decoded.part as { value: { record: Extract<NonNullable<Record_>, { $case: "stream" }> } }).value.record.value.headHash, "the head hash of a stream whose last delta is exactly max_delta_bytes");
      const { checkpoint: imported } = await keeper.clients.checkpoints.getCheckpoint({ name: `${keeper.subject}/checkpoints/mark` });
      checkEqual(imported?.device, "", "an imported checkpoint without a device");
      const resume = imported?.resume;
      checkEqual([resume?.activityType ?? "", resume?.resource ?? "", resume?.position ?? "", resume?.fallbackUrl ?? "", Object.keys(resume?.attributes ?? {}).length], ["", "", "", "", 0], "an imported checkpoint without a resume payload has an empty one");
      checkBytes(imported?.digest, checkpointDigest({ entries: checkpoint.entries, resume: undefined }), "the imported checkpoint's digest");
    },
  }),
  defineCase({
    id: "portability-edges.import-judges-each-append-apart",
    requirements: ["PORT-049", "LIMIT-021", "LIMIT-023", "LIMIT-024"],
    profile: "portability",
    timeoutMs: 90_000,
    async run(ctx) {
      const max = ctx.limits.maxDeltaBytes;
      const bound = Number(ctx.limits.maxSnapshotBytes);
      if (bound < 4 * max) ctx.skip(`max_snapshot_bytes (${bound}) is under 4 × max_delta_bytes: the subject this case exports would not fit in one state`);
      // Appends each within what LIMIT-021, LIMIT-023 and LIMIT-024 allow one append, but not
      // two of them together: their bundle must import, however many deltas the importer
      // stores at once (PORT-049 judges a record's batch as its append was judged).
      const source = await ctx.session();
      const stream = await createStream(ctx, source, { encoding: ENCODING.jsonPatch, streamId: "work" });
      let sequence = 0;
      const appendOne = (patches: unknown[]) => append(source, stream.name, patches as object[], { clientSequence: ++sequence });
      await appendOne([[{ op: "add", path: "/s", value: "y".repeat(Math.floor(max * 0.6) - 2) }]]);
      await appendOne([[{ op: "add", path: "/d", value: {} }]]);
      await appendOne([[{ op: "copy", from: "/s", path: "/c1" }]]);
      await appendOne([[{ op: "copy", from: "/s", path: "/c2" }]]);
      await appendOne([[{ op: "move", from: "/s", path: "/d/s" }]]);
      await appendOne([[{ op: "move", from: "/d/s", path: "/s" }, { op: "move", from: "/s", path: "/d/s" }]]);
      const plan = planShifts(ctx.limits);
      const shifts = typeof plan !== "string";
      if (shifts) {
        for (const deltas of plan.build) await appendOne(deltas);
        await appendOne(plan.exact);
        await appendOne(plan.exact);
      } else ctx.note(`shifts not part of the bundle: ${plan}`);
      const parts = withoutLinks(await exportOwn(ctx, source));
      const target = await ctx.session();
      expectImported(
        await importRaw(ctx, target.token, parts.map((p) => p.bytes)),
        `a bundle of appends that each copy and move deeper 0.6 × max_delta_bytes${shifts ? " and shift max_snapshot_bytes items" : ""}`,
      );
      const { stream: imported } = await target.clients.streams.getStream({ name: `${target.subject}/streams/work` });
      const { stream: original } = await source.clients.streams.getStream({ name: stream.name });
      checkEqual([imported?.headVersion, hex(imported?.headHash)], [original?.headVersion, hex(original?.headHash)], "the imported stream's head");
    },
  }),
];
