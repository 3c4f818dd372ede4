import type { JsonValue } from "@bufbuild/protobuf";
import { continuity } from "@continuity/sdk/gen";
import { TOKEN_EXCHANGE, type CaseContext, type Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkBytes, checkEqual, checkError, fail, Status } from "../harness/expect.js";
import { genesisHash } from "../harness/hashing.js";
import { richErrorOf } from "../harness/raw-call.js";
import { append, createStream, ENCODING, listAllDeltas, POLICY, verifyChain, verifyStreamChain } from "../harness/streams.js";
import { snapshotHash } from "../harness/hashing.js";
import { openSubscription } from "../harness/subscription.js";
import { createServer as createNetServer, type Socket } from "node:net";
import { CompactSign, compactVerify, createLocalJWKSet, generateKeyPair } from "jose";
import { decodePart, expectImported, exportRaw, importRaw, recordsDigest, signaturePayload, transferRaw, type BundlePart, type ImportOutcome } from "../portability/bundle.js";
import { linkAccount } from "../harness/linking.js";

const v1 = continuity.v1;
type Stream = continuity.v1.Stream;

/** The type of the cart stream, which platform b is granted to read; and of a grant revoked before the export. */
const CART_TYPE = "org.example.portable-cart";
const REVOKED_TYPE = "org.example.portable-revoked";
const hex = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? []).toString("hex");

/** A subject with every kind of record: compacted JSON, opaque, a checkpoint, two platforms, grants. */
interface PortableSubject {
  readonly owner: Session;
  readonly other: Session;
  /** Every stream, with the session that may read it. */
  readonly streams: { stream: Stream; reader: Session }[];
}

async function buildPortableSubject(ctx: CaseContext): Promise<PortableSubject> {
  const owner = await ctx.session();
  const progress = await createStream(ctx, owner, { encoding: ENCODING.mergePatch, streamId: "progress" });
  for (let seq = 1; seq <= 5; seq++) await append(owner, progress.name, [{ [`lesson${seq}`]: "done" }], { clientSequence: seq });
  await owner.clients.streams.compactStream({ stream: progress.name, horizonVersion: 3n });
  const canvas = await createStream(ctx, owner, { encoding: ENCODING.opaque, streamId: "canvas", policy: POLICY.strict });
  await append(owner, canvas.name, [Buffer.from([0, 1, 2]), Buffer.from([255])], { clientSequence: 1, expectedVersion: 0 });
  const cart = await createStream(ctx, owner, { encoding: ENCODING.jsonPatch, streamId: "cart", type: CART_TYPE });
  await append(owner, cart.name, [[{ op: "add", path: "/items", value: ["tea"] }]], { clientSequence: 1 });
  await owner.clients.checkpoints.createCheckpoint({ parent: owner.subject, checkpointId: "portable", streams: [{ stream: progress.name }, { stream: canvas.name }], resume: { activityType: "org.example.lesson", resource: "c", position: "p", fallbackUrl: "", attributes: { k: "v" } } });
  const other = await linkAccount(ctx, owner, ctx.platforms.b, "b");
  // Platform b may read the cart (a grant record), and once could read more (a revoked one).
  await owner.clients.consent.createGrant({ parent: owner.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${ctx.platforms.b.id}`, streamType: CART_TYPE, access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } });
  const revoked = await owner.clients.consent.createGrant({ parent: owner.subject, grant: { name: "", grantorPlatform: "", granteePlatform: `platforms/${ctx.platforms.b.id}`, streamType: REVOKED_TYPE, access: v1.GrantAccess.GRANT_ACCESS_READ, createTime: undefined, revokeTime: undefined } });
  await owner.clients.consent.revokeGrant({ name: revoked.grant!.name });
  const archive = await createStream(ctx, owner, { streamId: "archive", type: REVOKED_TYPE });
  await append(owner, archive.name, [{ old: true }], { clientSequence: 1 });
  const notes = await createStream(ctx, other, { encoding: ENCODING.mergePatch, streamId: "b-notes" });
  await append(other, notes.name, [{ note: "only platform b may read this" }], { clientSequence: 1 });
  const fresh = async (s: Stream, reader: Session) => ({ stream: (await reader.clients.streams.getStream({ name: s.name })).stream!, reader });
  return { owner, other, streams: [await fresh(progress, owner), await fresh(canvas, owner), await fresh(cart, owner), await fresh(archive, owner), await fresh(notes, other)] };
}

async function exportBundle(ctx: CaseContext, session: Session): Promise<BundlePart[]> {
  try {
    return (await exportRaw(ctx, session.token, session.subject)).map(decodePart);
  } catch (error) {
    throw richErrorOf("/continuity.v1.PortabilityService/ExportSubject", error as never);
  }
}

function expectImportError(outcome: ImportOutcome, expected: Parameters<typeof checkError>[1], what: string): void {
  if (outcome.ok) fail(`${what}: the import must fail, but it reported ${outcome.response.recordsImported} records imported`);
  checkError(richErrorOf("/continuity.v1.PortabilityService/ImportBundle", outcome.error), expected, what);
}

/** Checks a bundle against the subject it came from (PORT-001 to PORT-006, PORT-010). */
async function verifyBundle(parts: readonly BundlePart[], subject: PortableSubject): Promise<void> {
  check(parts.length >= 2, `a bundle needs a manifest and a trailer, got ${parts.length} messages`);
  const [first, last] = [parts[0]!, parts.at(-1)!];
  if (first.decoded.part?.$case !== "manifest") return fail("the first message of a bundle must be the manifest");
  if (last.decoded.part?.$case !== "trailer") return fail("the last message of a bundle must be the trailer");
  const middle = parts.slice(1, -1);
  for (const part of middle) check(part.decoded.part?.$case === "record", `messages between manifest and trailer must be records, got ${part.decoded.part?.$case}`);
  const manifest = first.decoded.part.value;
  const trailer = last.decoded.part.value;
  checkEqual(manifest.formatVersion, 1, "BundleManifest.format_version");
  const expectedSummaries = [...subject.streams]
    .map(({ stream }) => [stream.uid, stream.name.split("/").pop(), stream.type, stream.headVersion, Buffer.from(stream.headHash).toString("hex"), stream.horizonVersion, stream.headVersion - stream.horizonVersion])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  const summaries = manifest.streams
    .map((s) => [s.streamUid, s.streamId, s.type, s.headVersion, Buffer.from(s.headHash).toString("hex"), s.horizonVersion, s.deltaCount])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  checkEqual(summaries, expectedSummaries, "manifest stream summaries (the whole subject, every platform's streams)");

  const records = middle.map((part) => (part.decoded.part as { $case: "record"; value: continuity.v1.BundleRecord }).value);
  let index = 0;
  const byUid = [...subject.streams].sort((a, b) => Buffer.compare(Buffer.from(a.stream.uid), Buffer.from(b.stream.uid)));
  for (const { stream, reader } of byUid) {
    const streamRecord = records[index++]?.record;
    if (streamRecord?.$case !== "stream" || streamRecord.value.uid !== stream.uid) fail(`record ${index}: expected the stream record of ${stream.uid}`);
    let startHash: Uint8Array = genesisHash(stream);
    if (stream.horizonVersion > 0n) {
      const snapshot = records[index++]?.record;
      if (snapshot?.$case !== "snapshot") return fail(`record ${index}: expected the snapshot of ${stream.uid} at its horizon`);
      const header = snapshot.value.header!;
      checkEqual([header.stream, header.streamUid, header.version], ["", stream.uid, stream.horizonVersion], "BundleSnapshot header (stream name empty)");
      checkBytes(header.snapshotHash, snapshotHash({ streamUid: stream.uid, version: header.version, headHash: header.headHash, encoding: header.encoding, state: snapshot.value.state }), "BundleSnapshot snapshot_hash (recomputed)");
      checkBytes(header.headHash, stream.horizonHash, "BundleSnapshot head_hash is the horizon hash");
      startHash = header.headHash;
    }
    const deltas: continuity.v1.Delta[] = [];
    while (records[index]?.record?.$case === "delta") deltas.push((records[index++]!.record as { value: continuity.v1.Delta }).value);
    verifyChain(stream, deltas, stream.horizonVersion, startHash);
    const listed = await listAllDeltas(reader, stream.name, stream.horizonVersion);
    // PORT-003: each delta as ListDeltas returns it; only its name is not portable.
    const fields = (d: continuity.v1.Delta) => [d.version, d.encoding, hex(d.payload), hex(d.prevHash), hex(d.hash), d.device, d.clientSequence, d.batchFirstVersion, d.batchSize, d.commitTime?.getTime()];
    checkEqual(deltas.map(fields), listed.map(fields), `delta records of ${stream.uid} vs ListDeltas (version, encoding, payload, hashes, device, client_sequence, batch, commit_time)`);
  }
  const identity = records.slice(index).map((r) => ({ kind: r.record?.$case, name: (r.record?.value as { name?: string } | undefined)?.name ?? "" }));
  const kinds = identity.map((r) => r.kind);
  const order = ["checkpoint", "accountLink", "device", "grant"];
  checkEqual(kinds, [...kinds].sort((a, b) => order.indexOf(a ?? "") - order.indexOf(b ?? "")), "after the streams: checkpoints, account links, devices, grants");
  for (const kind of order) {
    const names = identity.filter((r) => r.kind === kind).map((r) => r.name);
    checkEqual(names, [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))), `the ${kind} records ordered by name`);
  }
  check(kinds.includes("checkpoint") && kinds.filter((k) => k === "accountLink").length === 2, "the bundle carries the checkpoint and both account links");
  const devices = identity.filter((r) => r.kind === "device").map((r) => r.name.split("/").pop());
  for (const session of [subject.owner, subject.other]) check(devices.includes(session.deviceId), `the bundle carries the device record of ${session.deviceId} (devices: ${devices.join(", ")})`);
  checkEqual(kinds.filter((k) => k === "grant").length, 2, "the bundle carries both grant records, the revoked one too");

  checkEqual(trailer.recordCount, BigInt(middle.length), "BundleTrailer.record_count");
  const digest = recordsDigest(middle.map((part) => part.json as JsonValue));
  checkBytes(trailer.recordsDigest, digest, "BundleTrailer.records_digest (recomputed over proto3 JSON records)");
  const segments = trailer.signature.split(".");
  checkEqual(segments.length, 3, "the signature is a compact JWS");
  const header = JSON.parse(Buffer.from(segments[0]!, "base64url").toString("utf8")) as { alg?: string; typ?: string; kid?: string };
  check(["ES256", "EdDSA", "RS256"].includes(header.alg ?? ""), `signature alg ${header.alg} must be ES256, EdDSA or RS256`);
  checkEqual(header.typ, "continuity-bundle+jws", "signature typ");
  check(typeof header.kid === "string" && header.kid !== "", "the signature header names its kid");
  const payload = Buffer.from(segments[1]!, "base64url");
  const expected = signaturePayload(first.json as JsonValue, trailer.recordCount, digest);
  if (!payload.equals(expected)) fail(`signature payload: expected ${expected.toString("utf8").slice(0, 300)}, got ${payload.toString("utf8").slice(0, 300)}`);
}

/**
 * Checks every stream of the bundle on the target (PORT-020), each read by its owner
 * platform: the imported account links must bring the second platform's account into the
 * target subject too (PORT-025), or it could not read its own stream there.
 */
async function verifyImported(ctx: CaseContext, target: Session, parts: readonly BundlePart[], subject: PortableSubject): Promise<void> {
  const manifest = (parts[0]!.decoded.part as { value: continuity.v1.BundleManifest }).value;
  const owners = new Map<string, string>();
  for (const part of parts) {
    const record = part.decoded.part?.$case === "record" ? part.decoded.part.value.record : undefined;
    if (record?.$case === "stream") owners.set(record.value.uid, record.value.ownerPlatform);
  }
  const otherOnTarget = await ctx.session({ platform: ctx.platforms.b, accountId: subject.other.accountId });
  checkEqual(otherOnTarget.subject, target.subject, "the second platform's account, imported, belongs to the target subject");
  for (const summary of manifest.streams) {
    const reader = owners.get(summary.streamUid) === `platforms/${target.platform.id}` ? target : otherOnTarget;
    const name = `${target.subject}/streams/${summary.streamId}`;
    const { stream } = await reader.clients.streams.getStream({ name });
    checkEqual([stream?.uid, stream?.type, stream?.horizonVersion, stream?.headVersion, Buffer.from(stream?.headHash ?? []).toString("hex")], [summary.streamUid, summary.type, summary.horizonVersion, summary.headVersion, Buffer.from(summary.headHash).toString("hex")], `imported stream ${summary.streamId}`);
    await verifyStreamChain(reader, name);
  }
  await verifyImportedIdentity(target, otherOnTarget, parts);
}

/** PORT-028: the checkpoint, devices and grants of the bundle are in the target subject and act there. */
async function verifyImportedIdentity(target: Session, other: Session, parts: readonly BundlePart[]): Promise<void> {
  const records = parts.flatMap((part) => (part.decoded.part?.$case === "record" && part.decoded.part.value.record !== undefined ? [part.decoded.part.value.record] : []));
  const local = (name: string): string => `${target.subject}/${name.split("/").slice(2).join("/")}`;
  for (const record of records) {
    if (record.$case !== "checkpoint") continue;
    const exported = record.value;
    const { checkpoint } = await target.clients.checkpoints.getCheckpoint({ name: local(exported.name) });
    const entries = (c: continuity.v1.Checkpoint | undefined) => (c?.entries ?? []).map((e) => [e.streamUid, e.version, hex(e.headHash)]).sort();
    checkEqual(entries(checkpoint), entries(exported), `imported checkpoint ${exported.name}: its streams, versions and chain hashes`);
    checkEqual(checkpoint?.entries.map((e) => e.stream).sort(), exported.entries.map((e) => local(e.stream)).sort(), `imported checkpoint ${exported.name}: stream names in the target subject`);
    checkBytes(checkpoint?.digest, exported.digest, `imported checkpoint ${exported.name}: digest`);
    checkEqual(checkpoint?.resume, exported.resume, `imported checkpoint ${exported.name}: resume payload`);
  }
  for (const session of [target, other]) {
    const { devices } = await session.clients.devices.listDevices({ parent: target.subject, pageSize: 0, pageToken: "" });
    const mine = records.flatMap((r) => (r.$case === "device" && r.value.platform === `platforms/${session.platform.id}` ? [local(r.value.name)] : []));
    for (const name of mine) check(devices.some((d) => d.name === name), `imported device ${name} is listed on the target`);
  }
  // The grant acts: platform b reads the owner's cart on the target; the revoked one stays revoked.
  const { stream } = await other.clients.streams.getStream({ name: `${target.subject}/streams/cart` });
  checkEqual(stream?.type, CART_TYPE, "platform b reads the cart on the target through the imported grant");
  await expectErrorOf(other.clients.streams.getStream({ name: `${target.subject}/streams/archive` }), { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" }, "platform b reading a stream whose grant was revoked before the export");
  const { grants } = await target.clients.consent.listGrants({ parent: target.subject, pageSize: 0, pageToken: "" });
  checkEqual(grants.map((g) => g.streamType).sort(), [CART_TYPE], "ListGrants on the target: the active grant, not the revoked one");
}

/** Bundles and their import. */
export const PORTABILITY_CASES = [
  defineCase({
    id: "portability.export-is-complete-and-verifiable",
    requirements: ["PORT-001", "PORT-002", "PORT-003", "PORT-004", "PORT-005", "PORT-006", "PORT-010", "PORT-013"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      const subject = await buildPortableSubject(ctx);
      const parts = await exportBundle(ctx, subject.owner);
      await verifyBundle(parts, subject);
      // PORT-013: the signature verifies offline with the key set the server publishes.
      const info = await ctx.clients().serverInfo.getServerInfo({});
      let jwks: { keys: object[] };
      try {
        jwks = JSON.parse(info.bundleSigningJwks) as { keys: object[] };
      } catch {
        return fail(`ServerInfo.bundle_signing_jwks must be a JWKS document, got ${JSON.stringify(info.bundleSigningJwks.slice(0, 80))}`);
      }
      check(Array.isArray(jwks.keys) && jwks.keys.length > 0, "ServerInfo.bundle_signing_jwks must hold at least one key");
      const trailer = (parts.at(-1)!.decoded.part as { value: continuity.v1.BundleTrailer }).value;
      await compactVerify(trailer.signature, createLocalJWKSet(jwks as never)).catch((error: unknown) => fail(`the bundle signature does not verify with ServerInfo.bundle_signing_jwks: ${(error as Error).message}`));
    },
  }),
  defineCase({
    id: "portability.import-round-trip-and-idempotent",
    requirements: ["PORT-020", "PORT-021", "PORT-025", "PORT-028", "PORT-011"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      const subject = await buildPortableSubject(ctx);
      const parts = await exportBundle(ctx, subject.owner);
      const bytes = parts.map((p) => p.bytes);
      const target = await ctx.session();
      expectImportError(await importRaw(ctx, target.token, bytes), { code: Status.FAILED_PRECONDITION, reason: "ACCOUNT_LINKED_ELSEWHERE" }, "importing a bundle whose accounts are linked to a live subject");
      const trailer = (parts.at(-1)!.decoded.part as { value: continuity.v1.BundleTrailer }).value;
      const withTrailer = (t: continuity.v1.BundleTrailer) => [...bytes.slice(0, -1), Buffer.from(v1.ExportSubjectResponse.encode({ part: { $case: "trailer", value: t } }).finish())];
      // Erased, the source no longer holds the accounts; only the trailer can fail now.
      await subject.owner.clients.subjects.deleteSubject({ name: subject.owner.subject });
      const other = await ctx.session();
      expectImportError(await importRaw(ctx, other.token, withTrailer({ ...trailer, recordCount: trailer.recordCount + 1n })), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["trailer.record_count"] }, "a trailer with the wrong record count");
      const flipped = Buffer.from(trailer.recordsDigest);
      flipped[0] = flipped[0]! ^ 0xff;
      expectImportError(await importRaw(ctx, other.token, withTrailer({ ...trailer, recordsDigest: flipped })), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["trailer.records_digest"] }, "a trailer with the wrong records digest");
      // A failed import may keep what it stored (GEN-011), the source's account links included.
      await other.clients.subjects.deleteSubject({ name: other.subject });
      const fresh = await ctx.session();
      const first = expectImported(await importRaw(ctx, fresh.token, bytes), "importing the bundle after the source subject was erased");
      checkEqual(first.subject, fresh.subject, "ImportBundleResponse.subject is the token's subject");
      checkEqual(first.recordsImported + first.recordsSkipped, trailer.recordCount, "records imported + skipped");
      await verifyImported(ctx, fresh, parts, subject);
      const again = expectImported(await importRaw(ctx, fresh.token, bytes), "importing the same bundle again");
      checkEqual([again.recordsImported, again.recordsSkipped], [0n, trailer.recordCount], "a repeated import stores nothing");
      await verifyImported(ctx, fresh, parts, subject);
    },
  }),
  defineCase({
    id: "portability.import-resumes-after-interruption",
    requirements: ["PORT-022"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      const subject = await buildPortableSubject(ctx);
      const parts = await exportBundle(ctx, subject.owner);
      await subject.owner.clients.subjects.deleteSubject({ name: subject.owner.subject });
      const target = await ctx.session();
      const half = Math.ceil(parts.length / 2);
      const interrupted = await importRaw(ctx, target.token, parts.map((p) => p.bytes), { cancelAfter: half });
      check(!interrupted.ok, "an import cancelled half way must not report success");
      const resumed = expectImported(await importRaw(ctx, target.token, parts.map((p) => p.bytes)), "sending the whole bundle again");
      const count = (parts.at(-1)!.decoded.part as { value: continuity.v1.BundleTrailer }).value.recordCount;
      checkEqual(resumed.recordsImported + resumed.recordsSkipped, count, "records imported + skipped after resuming");
      await verifyImported(ctx, target, parts, subject);
    },
  }),
  defineCase({
    id: "portability.import-verifies-chain-and-ids",
    requirements: ["PORT-023", "PORT-024"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      const subject = await buildPortableSubject(ctx);
      const parts = await exportBundle(ctx, subject.owner);
      await subject.owner.clients.subjects.deleteSubject({ name: subject.owner.subject });
      // Tamper with one delta payload and re-seal the trailer, so only the chain can tell.
      const tampered = parts.map((part) => {
        const record = part.decoded.part?.$case === "record" ? part.decoded.part.value.record : undefined;
        if (record?.$case !== "delta" || record.value.encoding !== ENCODING.opaque) return part;
        const forged = { ...record.value, payload: Buffer.concat([record.value.payload, Buffer.from([7])]) };
        return decodePart(Buffer.from(v1.ExportSubjectResponse.encode({ part: { $case: "record", value: { record: { $case: "delta", value: forged } } } }).finish()));
      });
      const middle = tampered.slice(1, -1);
      const trailer = (parts.at(-1)!.decoded.part as { value: continuity.v1.BundleTrailer }).value;
      const resealed = Buffer.from(v1.ExportSubjectResponse.encode({ part: { $case: "trailer", value: { ...trailer, recordsDigest: recordsDigest(middle.map((p) => p.json as JsonValue)) } } }).finish());
      const target = await ctx.session();
      expectImportError(await importRaw(ctx, target.token, [...tampered.slice(0, -1).map((p) => p.bytes), resealed]), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD" }, "a bundle whose opaque delta breaks the hash chain");
      const { streams } = await target.clients.streams.listStreams({ parent: target.subject, pageSize: 0, pageToken: "", type: "" });
      const canvas = streams.find((s) => s.name.endsWith("/streams/canvas"));
      check(canvas === undefined || canvas.headVersion < 2n, "the broken delta must not be stored");
      await target.clients.subjects.deleteSubject({ name: target.subject });
      const taken = await ctx.session();
      await createStream(ctx, taken, { streamId: "cart" });
      expectImportError(await importRaw(ctx, taken.token, parts.map((p) => p.bytes)), { code: Status.ALREADY_EXISTS, reason: "STREAM_ALREADY_EXISTS" }, "a bundle whose stream id is taken by another stream");
    },
  }),
  defineCase({
    id: "portability.needs-identity-manage",
    requirements: ["PORT-006", "PORT-026"],
    profile: "portability",
    async run(ctx) {
      const full = await ctx.session();
      const limited = await ctx.session({ accountId: full.accountId, scope: "state.read state.write" });
      const exported = await exportRaw(ctx, limited.token, limited.subject).then(
        () => undefined,
        (error: unknown) => error,
      );
      if (exported === undefined) fail("ExportSubject without identity.manage must fail");
      checkError(richErrorOf("/continuity.v1.PortabilityService/ExportSubject", exported as never), { code: Status.PERMISSION_DENIED, reason: "SCOPE_INSUFFICIENT", metadata: { scope: "identity.manage" } }, "ExportSubject without identity.manage");
      const parts = await exportBundle(ctx, full);
      expectImportError(await importRaw(ctx, limited.token, parts.map((p) => p.bytes)), { code: Status.PERMISSION_DENIED, reason: "SCOPE_INSUFFICIENT", metadata: { scope: "identity.manage" } }, "ImportBundle without identity.manage");
    },
  }),
  defineCase({
    id: "portability.live-migration-loses-nothing",
    requirements: ["PORT-030", "PORT-031", "PORT-032", "PORT-033", "PORT-051"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 90_000,
    async run(ctx) {
      const source = await ctx.session();
      const stream = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "moving" });
      for (let seq = 1; seq <= 20; seq++) await append(source, stream.name, [{ n: seq }], { clientSequence: seq });
      // A stream compacted at its head that does not change while the subject moves: the
      // catch-up bundles carry it from its horizon, with no snapshot record (PORT-051).
      const settled = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "settled" });
      for (let seq = 1; seq <= 3; seq++) await append(source, settled.name, [{ s: seq }], { clientSequence: seq });
      await source.clients.streams.compactStream({ stream: settled.name, horizonVersion: 3n });
      const { stream: settledHere } = await source.clients.streams.getStream({ name: settled.name });
      const watcher = openSubscription(source, "", ctx.signal);
      await watcher.expectEvent("ready");
      const second = await ctx.startSecondServer();
      const targetExchange = await second.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken: await ctx.mintAssertion({ platform: source.platform, accountId: source.accountId }), subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "", deviceId: source.deviceId, deviceDisplayName: "" });
      const target = second.clients(targetExchange.accessToken);
      // Keep writing on the source while it migrates: every acknowledged write must arrive.
      let lastAcknowledged: continuity.v1.AppendDeltasResponse | undefined;
      let moved = false;
      const writer = (async () => {
        for (let seq = 21; seq <= 2000 && !moved; seq++) {
          try {
            lastAcknowledged = await append(source, stream.name, [{ n: seq }], { clientSequence: seq });
          } catch (error) {
            checkError(error, { code: Status.FAILED_PRECONDITION, reason: "SUBJECT_MOVED", metadataKeys: ["target", "subject"] }, "a write on the source during the switch");
            moved = true;
          }
        }
      })();
      try {
        const { migration } = await target.portability.createMigration({ parent: targetExchange.subject, source: ctx.address(), sourceAccessToken: source.token });
        check(migration !== undefined && migration.state !== v1.MigrationState.MIGRATION_STATE_UNSPECIFIED && migration.state !== v1.MigrationState.MIGRATION_STATE_FAILED, `CreateMigration must return a running migration, got ${migration?.state} ${migration?.error}`);
        let state: continuity.v1.MigrationState = migration.state;
        const deadline = Date.now() + 60_000;
        while (state !== v1.MigrationState.MIGRATION_STATE_COMPLETED) {
          if (state === v1.MigrationState.MIGRATION_STATE_FAILED || Date.now() > deadline) fail(`the migration did not complete (state ${state})`);
          await new Promise((resolve) => setTimeout(resolve, 100));
          const read = await target.portability.getMigration({ name: migration.name });
          state = read.migration?.state ?? v1.MigrationState.MIGRATION_STATE_UNSPECIFIED;
          if (read.migration?.state === v1.MigrationState.MIGRATION_STATE_FAILED) fail(`the migration failed: ${read.migration.error}`);
        }
      } finally {
        moved = true;
        await writer;
      }
      const redirect = { code: Status.FAILED_PRECONDITION, reason: "SUBJECT_MOVED", metadataKeys: ["target", "subject"] } as const;
      await expectErrorOf(source.clients.streams.getStream({ name: stream.name }), redirect, "the source after the switch");
      await expectErrorOf(ctx.session({ accountId: source.accountId }), redirect, "a token exchange on the source after the switch");
      checkError(await watcher.ended(), redirect, "an open subscription on the source after the switch");
      watcher.close();
      const { stream: settledThere } = await target.streams.getStream({ name: `${targetExchange.subject}/streams/settled` });
      checkEqual([settledThere?.uid, settledThere?.headVersion, settledThere?.horizonVersion], [settled.uid, 3n, 3n], "a stream compacted at its head, on the target");
      checkBytes(settledThere?.headHash, settledHere!.headHash, "its head hash on the target");
      const { stream: moved2 } = await target.streams.getStream({ name: `${targetExchange.subject}/streams/moving` });
      checkEqual(moved2?.uid, stream.uid, "the stream keeps its uid on the target");
      if (lastAcknowledged !== undefined) {
        checkEqual(moved2?.headVersion, lastAcknowledged.headVersion, "the target's head is the last write the source acknowledged");
        checkBytes(moved2?.headHash, lastAcknowledged.headHash, "the target's head hash");
      }
    },
  }),
  defineCase({
    id: "portability.failed-migration-leaves-source-serving",
    requirements: ["PORT-034", "PORT-035"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 60_000,
    async run(ctx) {
      const source = await ctx.session();
      const stream = await createStream(ctx, source);
      const second = await ctx.startSecondServer();
      const targetExchange = await second.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken: await ctx.mintAssertion({ platform: source.platform, accountId: source.accountId }), subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "", deviceId: source.deviceId, deviceDisplayName: "" });
      const target = second.clients(targetExchange.accessToken);
      // PORT-035: the source's refusal is the migration's failure, not CreateMigration's.
      const { migration } = await target.portability.createMigration({ parent: targetExchange.subject, source: ctx.address(), sourceAccessToken: "not-a-token", sourceSubject: "" });
      if (migration === undefined) return fail("CreateMigration must return the migration");
      let current = migration;
      const deadline = Date.now() + 30_000;
      while (current.state !== v1.MigrationState.MIGRATION_STATE_FAILED) {
        if (current.state === v1.MigrationState.MIGRATION_STATE_COMPLETED || current.state === v1.MigrationState.MIGRATION_STATE_CANCELLED || Date.now() > deadline) fail(`a migration whose source refuses the token must end FAILED, got state ${current.state}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        current = (await target.portability.getMigration({ name: migration.name })).migration!;
      }
      check(/UNAUTHENTICATED|TOKEN_INVALID/.test(current.error), `Migration.error must name the source's answer (UNAUTHENTICATED / TOKEN_INVALID), got ${JSON.stringify(current.error)}`);
      check(current.endTime !== undefined, "a failed migration has an end_time");
      const { stream: still } = await source.clients.streams.getStream({ name: stream.name });
      checkEqual(still?.uid, stream.uid, "the source still serves the subject");
      await append(source, stream.name, [{ after: "failed migration" }], { clientSequence: 1 });
    },
  }),
  defineCase({
    id: "portability.https-source-is-never-plaintext",
    requirements: ["PORT-040", "PORT-035"],
    profile: "portability",
    needs: ["second-server"],
    timeoutMs: 60_000,
    async run(ctx) {
      if ((ctx.credentials() as { _isSecure?: () => boolean })._isSecure?.() === true) ctx.skip("the server under test speaks TLS here; this case needs a plaintext source to name with https://");
      const source = await ctx.session();
      const stream = await createStream(ctx, source);
      await append(source, stream.name, [{ before: "migration" }], { clientSequence: 1 });
      const second = await ctx.startSecondServer();
      const targetExchange = await second.clients().tokens.exchangeToken({ grantType: TOKEN_EXCHANGE.grantType, subjectToken: await ctx.mintAssertion({ platform: source.platform, accountId: source.accountId }), subjectTokenType: TOKEN_EXCHANGE.subjectTokenType, scope: "", deviceId: source.deviceId, deviceDisplayName: "" });
      const target = second.clients(targetExchange.accessToken);
      await expectErrorOf(
        target.portability.createMigration({ parent: targetExchange.subject, source: `http://${ctx.address()}`, sourceAccessToken: source.token, sourceSubject: "" }),
        { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["source"] },
        "CreateMigration with an http:// source (neither host:port nor https://host:port)",
      );
      // The source speaks plaintext only: named with https://, the target must fail to reach it
      // rather than send the token and the records unencrypted.
      const { migration } = await target.portability.createMigration({ parent: targetExchange.subject, source: `https://${ctx.address()}`, sourceAccessToken: source.token, sourceSubject: "" });
      if (migration === undefined) return fail("CreateMigration must return the migration");
      checkEqual(migration.source, `https://${ctx.address()}`, "Migration.source as the client named it");
      let current = migration;
      const deadline = Date.now() + 30_000;
      while (current.state !== v1.MigrationState.MIGRATION_STATE_FAILED) {
        if (current.state === v1.MigrationState.MIGRATION_STATE_COMPLETED || current.state === v1.MigrationState.MIGRATION_STATE_CANCELLED || Date.now() > deadline) fail(`a migration from an https:// source that speaks no TLS must end FAILED, got state ${current.state}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        current = (await target.portability.getMigration({ name: migration.name })).migration!;
      }
      check(current.error !== "", "Migration.error must say why the source could not be reached");
      const { streams } = await target.streams.listStreams({ parent: targetExchange.subject, pageSize: 0, pageToken: "", type: "" });
      checkEqual(streams.length, 0, "nothing of the subject reached the target");
      const { stream: still } = await source.clients.streams.getStream({ name: stream.name });
      checkEqual(still?.headVersion, 1n, "the source still serves the subject");
      await append(source, stream.name, [{ after: "refused migration" }], { clientSequence: 2 });
    },
  }),
  defineCase({
    id: "portability.migration-source-must-be-allowed",
    requirements: ["PORT-041", "PORT-035"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      // In spawn mode the server is told it may dial loopback sources and nothing else
      // (CONTINUITY_MIGRATION_SOURCES); none of these is public or loopback, in any spelling.
      const person = await ctx.session();
      const port = ctx.address().slice(ctx.address().lastIndexOf(":") + 1);
      const refused = [
        "169.254.169.254:80",
        "https://169.254.169.254:443",
        "[::ffff:169.254.169.254]:80",
        "[::ffff:a9fe:a9fe]:80",
        "10.0.0.1:50051",
        "172.16.0.1:50051",
        "192.168.0.1:50051",
        "100.64.0.1:50051",
        "[fe80::1]:50051",
        "[fd00::1]:50051",
        "224.0.0.1:50051",
        // The unspecified addresses reach the machine itself on Linux.
        `0.0.0.0:${port}`,
        `[::]:${port}`,
      ];
      for (const source of refused) {
        await expectErrorOf(
          person.clients.portability.createMigration({ parent: person.subject, source, sourceAccessToken: person.token, sourceSubject: "" }),
          { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["source"] },
          `CreateMigration with source ${source}, an address the target must not dial (PORT-041)`,
        );
      }
      // None of them started anything: a migration from an allowed source is no conflict.
      if (!/^(127\.|\[::1\]|localhost:)/.test(ctx.address())) return;
      const { migration } = await person.clients.portability.createMigration({ parent: person.subject, source: ctx.address(), sourceAccessToken: "not-a-token", sourceSubject: "" });
      if (migration === undefined) return fail("CreateMigration from an allowed loopback source must return the migration");
      let current = migration;
      const deadline = Date.now() + 30_000;
      while (current.state !== v1.MigrationState.MIGRATION_STATE_FAILED) {
        if (current.state === v1.MigrationState.MIGRATION_STATE_COMPLETED || current.state === v1.MigrationState.MIGRATION_STATE_CANCELLED || Date.now() > deadline) fail(`a migration whose source refuses the token must end FAILED (PORT-035), got state ${current.state}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
        current = (await person.clients.portability.getMigration({ name: migration.name })).migration!;
      }
    },
  }),
  defineCase({
    id: "portability.untrusted-bundle-claims-no-account",
    requirements: ["PORT-014"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      const subject = await buildPortableSubject(ctx);
      const parts = await exportBundle(ctx, subject.owner);
      await subject.owner.clients.subjects.deleteSubject({ name: subject.owner.subject });
      // The same records, re-signed by a key the server has never seen.
      const trailer = (parts.at(-1)!.decoded.part as { value: continuity.v1.BundleTrailer }).value;
      const { privateKey } = await generateKeyPair("ES256");
      const payload = signaturePayload(parts[0]!.json as JsonValue, trailer.recordCount, trailer.recordsDigest);
      const forged = await new CompactSign(payload).setProtectedHeader({ alg: "ES256", typ: "continuity-bundle+jws", kid: "attacker" }).sign(privateKey);
      const resealed = Buffer.from(v1.ExportSubjectResponse.encode({ part: { $case: "trailer", value: { ...trailer, signature: forged } } }).finish());
      const attacker = await ctx.session();
      expectImported(await importRaw(ctx, attacker.token, [...parts.slice(0, -1).map((p) => p.bytes), resealed]), "importing a bundle signed by an unknown key");
      const victim = await ctx.session({ platform: ctx.platforms.b, accountId: subject.other.accountId });
      check(victim.subject !== attacker.subject, "an account link from a bundle signed by an untrusted key must not bring the account into the importer's subject");
    },
  }),
  defineCase({
    id: "portability.incremental-export",
    requirements: ["PORT-007", "PORT-008"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      const subject = await buildPortableSubject(ctx);
      const progress = subject.streams.find((s) => s.stream.name.endsWith("/streams/progress"))!.stream;
      const raw = await exportRaw(ctx, subject.owner.token, "subjects/-", 30_000, [{ streamUid: progress.uid, version: 4n }]).catch((error: unknown) => {
        throw richErrorOf("/continuity.v1.PortabilityService/ExportSubject", error as never);
      });
      const parts = raw.map(decodePart);
      const manifest = (parts[0]!.decoded.part as { value: continuity.v1.BundleManifest }).value;
      const summary = manifest.streams.find((s) => s.streamUid === progress.uid);
      checkEqual(manifest.streams.length, subject.streams.length, "an incremental bundle (named subjects/-) still lists every stream of the token's subject");
      checkEqual(summary?.deltaCount, 1n, "delta_count of a stream exported after version 4 of 5");
      const records = parts.slice(1, -1).map((p) => (p.decoded.part as { value: continuity.v1.BundleRecord }).value.record);
      const at = records.findIndex((r) => r?.$case === "stream" && r.value.uid === progress.uid);
      check(at >= 0, "the incremental bundle carries the stream record");
      const next = records[at + 1];
      if (next?.$case !== "delta") return fail(`after the stream record of an incremental stream comes its first new delta, got ${next?.$case}`);
      checkEqual([next.value.version, records[at + 2]?.$case === "delta" && (records[at + 2]!.value as continuity.v1.Delta).streamUid === progress.uid], [5n, false], "only version 5 follows, with no snapshot");
      const fullDeltas = records.filter((r) => r?.$case === "delta" && r.value.streamUid !== progress.uid).length;
      const expectedOthers = subject.streams.filter((s) => s.stream.uid !== progress.uid).reduce((n, s) => n + Number(s.stream.headVersion - s.stream.horizonVersion), 0);
      checkEqual(fullDeltas, expectedOthers, "streams not named are exported in full");
      for (const [version, expected] of [
        [1n, { code: Status.FAILED_PRECONDITION, reason: "HISTORY_COMPACTED" }],
        [99n, { code: Status.OUT_OF_RANGE, reason: "VERSION_AHEAD_OF_HEAD" }],
      ] as const) {
        const outcome = await exportRaw(ctx, subject.owner.token, subject.owner.subject, 30_000, [{ streamUid: progress.uid, version }]).then(
          () => undefined,
          (error: unknown) => error,
        );
        if (outcome === undefined) fail(`ExportSubject after version ${version} (horizon 3, head 5) must fail`);
        checkError(richErrorOf("/continuity.v1.PortabilityService/ExportSubject", outcome as never), expected, `ExportSubject after version ${version}`);
      }
    },
  }),
  defineCase({
    id: "portability.transfer-holds-writes-until-commit",
    requirements: ["PORT-032", "PORT-033", "PORT-039"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      const source = await ctx.session();
      const stream = await createStream(ctx, source, { encoding: ENCODING.mergePatch, streamId: "held" });
      await append(source, stream.name, [{ n: 1 }], { clientSequence: 1 });
      const begin = (target: string) => ({ step: { $case: "begin" as const, value: { name: source.subject, target, targetSubject: "subjects/elsewhere", after: [] } } });
      const readBundle = async (transfer: ReturnType<typeof transferRaw>): Promise<void> => {
        for (;;) {
          const bytes = await transfer.next().catch((error: unknown) => {
            throw richErrorOf("/continuity.v1.PortabilityService/TransferSubject", error as never);
          });
          if (bytes === undefined) return fail("TransferSubject ended before its trailer");
          if (v1.TransferSubjectResponse.decode(bytes).part?.$case === "trailer") return;
        }
      };

      // A switch that ends without commit moves nothing, and the write it held goes through.
      const abandoned = transferRaw(ctx, source.token);
      abandoned.send(begin("127.0.0.1:1"));
      await readBundle(abandoned);
      let heldDone = false;
      const held = append(source, stream.name, [{ n: 2 }], { clientSequence: 2 }).finally(() => (heldDone = true));
      await new Promise((resolve) => setTimeout(resolve, 300));
      check(!heldDone, "a write during the switch must wait for its outcome, not be acknowledged by the source alone");
      abandoned.cancel();
      const acknowledged = await held;
      checkEqual(acknowledged.headVersion, 2n, "the held write goes ahead on the source once the switch is abandoned");

      // A committed switch: the held write is refused with the redirect, never acknowledged.
      const switched = transferRaw(ctx, source.token);
      switched.send(begin("127.0.0.1:2"));
      await readBundle(switched);
      const refused = append(source, stream.name, [{ n: 3 }], { clientSequence: 3 }).then(
        () => undefined,
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      switched.send({ step: { $case: "commit", value: {} } });
      switched.end();
      const answer = await switched.next();
      check(answer !== undefined && v1.TransferSubjectResponse.decode(answer).part?.$case === "committed", "TransferSubject answers commit with committed");
      const error = await refused;
      if (error === undefined) fail("a write held during a committed switch must not be acknowledged by the source");
      checkError(error, { code: Status.FAILED_PRECONDITION, reason: "SUBJECT_MOVED", metadata: { target: "127.0.0.1:2", subject: "subjects/elsewhere" } }, "a write held during the switch");
      await expectErrorOf(source.clients.streams.listStreams({ parent: source.subject, pageSize: 0, pageToken: "", type: "" }), { code: Status.FAILED_PRECONDITION, reason: "SUBJECT_MOVED", metadata: { target: "127.0.0.1:2", subject: "subjects/elsewhere" } }, "a read after the switch");
    },
  }),
  defineCase({
    id: "portability.migration-conflict-and-cancel",
    requirements: ["PORT-035", "PORT-036", "PORT-037"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      // A source that accepts connections and never answers keeps a migration copying.
      const sockets = new Set<Socket>();
      const blackHole = createNetServer((socket) => {
        sockets.add(socket);
        socket.on("error", () => undefined);
      });
      await new Promise<void>((resolve) => blackHole.listen(0, "127.0.0.1", resolve));
      const address = `127.0.0.1:${(blackHole.address() as { port: number }).port}`;
      try {
        const target = await ctx.session();
        const create = () => target.clients.portability.createMigration({ parent: target.subject, source: address, sourceAccessToken: "token-the-source-never-reads", sourceSubject: "" });
        const { migration } = await create();
        check(migration !== undefined && migration.state === v1.MigrationState.MIGRATION_STATE_COPYING, `CreateMigration must accept a source it has not reached yet (PORT-035), got state ${migration?.state}`);
        await expectErrorOf(create(), { code: Status.FAILED_PRECONDITION, reason: "MIGRATION_CONFLICT" }, "a second CreateMigration while one is copying");
        // Another subject's migration, started later, is not the one a cancel ends.
        const bystander = await ctx.session();
        const { migration: theirs } = await bystander.clients.portability.createMigration({ parent: bystander.subject, source: address, sourceAccessToken: "token-the-source-never-reads", sourceSubject: "" });
        const { migration: cancelled } = await target.clients.portability.cancelMigration({ name: migration!.name });
        checkEqual(cancelled?.state, v1.MigrationState.MIGRATION_STATE_CANCELLED, "CancelMigration of a copying migration");
        const { migration: untouched } = await bystander.clients.portability.getMigration({ name: theirs!.name });
        checkEqual(untouched?.state, v1.MigrationState.MIGRATION_STATE_COPYING, "another subject's migration from the same source, after a cancel of this one");
        await bystander.clients.portability.cancelMigration({ name: theirs!.name });
        const { migration: again } = await target.clients.portability.cancelMigration({ name: migration!.name });
        checkEqual([again?.state, again?.endTime?.getTime()], [v1.MigrationState.MIGRATION_STATE_CANCELLED, cancelled?.endTime?.getTime()], "cancelling an ended migration changes nothing");
        const { migration: next } = await create();
        check(next !== undefined && next.name !== migration!.name, "after a cancel, a new migration may start");
        await target.clients.portability.cancelMigration({ name: next!.name });
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => blackHole.close(() => resolve()));
      }
    },
  }),
];

async function expectErrorOf(call: Promise<unknown>, expected: Parameters<typeof checkError>[1], what: string): Promise<void> {
  try {
    await call;
  } catch (error) {
    checkError(error, expected, what);
    return;
  }
  fail(`${what}: expected ${Status[expected.code]} / ${String(expected.reason)}, but the call succeeded`);
}
