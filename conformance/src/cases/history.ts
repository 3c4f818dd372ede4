import type { continuity } from "@continuity/sdk/gen";
import type { Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { checkBytes, checkEqual, expectError, Status } from "../harness/expect.js";
import { applyJsonPatch, genesisHash, snapshotHash } from "../harness/hashing.js";
import { append, checkJsonState, createStream, downloadSnapshot, ENCODING, listAllDeltas, POLICY, verifyStreamChain } from "../harness/streams.js";
import { openSubscription } from "../harness/subscription.js";

// History away from the head: snapshots at every middle version, after compaction, appends
// after compacting to the head, restore below the horizon, opaque snapshots at several versions.

type Stream = continuity.v1.Stream;

/** The chain hash at every version 0..head, from a verified listing (genesis at 0). */
async function chainHashes(session: Session, stream: Stream): Promise<Uint8Array[]> {
  const { deltas } = await verifyStreamChain(session, stream.name);
  return [genesisHash(stream), ...deltas.map((d) => d.hash)];
}

const compacted = (horizon: bigint) => ({ code: Status.FAILED_PRECONDITION, reason: "HISTORY_COMPACTED", metadata: { horizonVersion: String(horizon) } });

export const HISTORY_CASES = [
  defineCase({
    id: "subscription.events-carry-every-field",
    requirements: ["SUB-010", "SUB-013", "DELTA-001", "COMPACT-006", "RESTORE-007"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const laptop = await ctx.session({ accountId: session.accountId });
      const sub = openSubscription(laptop, "", ctx.signal);
      try {
        await sub.expectEvent("ready");
        const stream = await createStream(ctx, session, { encoding: ENCODING.mergePatch, policy: POLICY.strict, type: "org.example.fields" });
        const created = await sub.expectEvent("streamCreated");
        checkEqual(created.event.value.stream, stream, "StreamCreated.stream: the stream exactly as CreateStream returned it");
        await append(session, stream.name, [{ a: 1 }, { b: "é" }], { clientSequence: 1, expectedVersion: 0 });
        const { checkpoint } = await session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: undefined });
        await append(session, stream.name, [{ a: null }], { clientSequence: 2, expectedVersion: 2 });
        await session.clients.checkpoints.restoreCheckpoint({ name: checkpoint!.name });
        // Each event's deltas are exactly the deltas ListDeltas returns: payload, hashes,
        // device, client sequence, batch fields and commit time, not a summary.
        const listed = await listAllDeltas(session, stream.name);
        const batches = [listed.slice(0, 2), listed.slice(2, 3), listed.slice(3, 4)];
        for (const [index, batch] of batches.entries()) {
          const event = await sub.expectEvent("deltasAppended");
          checkEqual(event.event.value.deltas, batch, `DeltasAppended ${index + 1}: every field of every delta, as ListDeltas returns it`);
        }
        checkEqual([listed[3]?.device, listed[3]?.clientSequence], [session.device, 0n], "the compensating delta's device and client_sequence 0 in the event");
        const { stream: compacted } = await session.clients.streams.compactStream({ stream: stream.name, horizonVersion: 2n });
        const event = await sub.expectEvent("streamCompacted");
        checkEqual(event.event.value.stream, compacted, "StreamCompacted.stream: the stream as CompactStream returned it, horizon_hash included");
        await session.clients.streams.deleteStream({ name: stream.name });
        const deleted = await sub.expectEvent("streamDeleted");
        checkEqual([deleted.event.value.stream, deleted.event.value.streamUid], [stream.name, stream.uid], "StreamDeleted names the stream and its uid");
      } finally {
        sub.close();
      }
    },
  }),
  defineCase({
    id: "snapshot.headers-match-the-chain-at-every-version",
    requirements: ["SNAP-003", "SNAP-004", "SNAP-005", "COMPACT-011", "COMPACT-012", "COMPACT-010"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      // Array appends: applying a delta twice, or once too few, shows in the state.
      const batches: unknown[][] = [
        [[{ op: "add", path: "/list", value: [] }, { op: "add", path: "/n", value: 0 }]],
        [[{ op: "add", path: "/list/-", value: "a" }], [{ op: "add", path: "/list/-", value: "b" }], [{ op: "replace", path: "/n", value: 1 }]],
        [[{ op: "add", path: "/list/-", value: "c" }]],
        [[{ op: "add", path: "/list/-", value: "d" }], [{ op: "add", path: "/list/-", value: "e" }]],
        [[{ op: "replace", path: "/n", value: 2 }]],
      ];
      const states: unknown[] = [{}];
      let sequence = 0;
      for (const batch of batches) {
        await append(session, stream.name, batch as object[], { clientSequence: ++sequence });
        for (const patch of batch) states.push(applyJsonPatch(states.at(-1), patch));
      }
      const head = BigInt(states.length - 1);
      const hashes = await chainHashes(session, stream);
      const before: Uint8Array[] = [];
      for (let version = 0n; version <= head; version++) {
        const snapshot = await downloadSnapshot(session, stream.name, version);
        checkEqual(snapshot.header.version, version, "SnapshotHeader.version");
        checkBytes(snapshot.header.headHash, hashes[Number(version)]!, `SnapshotHeader.head_hash at version ${version} (the chain hash there, not the head's)`);
        checkJsonState(snapshot, states[Number(version)], `state at version ${version}`);
        before.push(snapshot.header.snapshotHash);
      }
      // Compact inside the second batch; every version from the horizon up keeps its snapshot.
      const horizon = 3n;
      await session.clients.streams.compactStream({ stream: stream.name, horizonVersion: horizon });
      for (let version = 0n; version < horizon; version++) {
        await expectError(downloadSnapshot(session, stream.name, version), compacted(horizon), `GetSnapshot at version ${version}, below the horizon`);
      }
      for (let version = horizon; version <= head; version++) {
        const snapshot = await downloadSnapshot(session, stream.name, version);
        checkBytes(snapshot.header.headHash, hashes[Number(version)]!, `SnapshotHeader.head_hash at version ${version} after compaction`);
        checkJsonState(snapshot, states[Number(version)], `state at version ${version} after compaction`);
        checkBytes(snapshot.header.snapshotHash, before[Number(version)]!, `snapshot_hash at version ${version} is unchanged by compaction`);
      }
      await append(session, stream.name, [[{ op: "add", path: "/list/-", value: "f" }]], { clientSequence: ++sequence });
      states.push(applyJsonPatch(states.at(-1), [{ op: "add", path: "/list/-", value: "f" }]));
      const after = await verifyStreamChain(session, stream.name);
      checkBytes(after.deltas[0]!.prevHash, hashes[Number(horizon)]!, "the first retained delta's prev_hash is horizon_hash");
      for (const version of [horizon, head, head + 1n]) {
        const snapshot = await downloadSnapshot(session, stream.name, version);
        checkBytes(snapshot.header.headHash, version === head + 1n ? after.stream.headHash : hashes[Number(version)]!, `SnapshotHeader.head_hash at version ${version} after a later append`);
        checkJsonState(snapshot, states[Number(version)], `state at version ${version} after a later append`);
      }
    },
  }),
  defineCase({
    id: "compact.to-the-head-then-append",
    requirements: ["COMPACT-013", "COMPACT-001", "COMPACT-012", "DELTA-011", "DELTA-012", "SNAP-005", "SNAP-007"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.mergePatch, policy: POLICY.strict });
      const first = await append(session, stream.name, [{ a: 1 }, { b: 2 }, { c: 3 }], { clientSequence: 1, expectedVersion: 0 });
      const { stream: compactedStream } = await session.clients.streams.compactStream({ stream: stream.name, horizonVersion: 3n });
      checkEqual([compactedStream?.horizonVersion, compactedStream?.headVersion], [3n, 3n], "horizon and head after compacting to the head");
      checkBytes(compactedStream?.horizonHash, first.headHash, "horizon_hash after compacting to the head is the head hash");
      checkBytes(compactedStream?.headHash, first.headHash, "head_hash after compacting to the head");
      const empty = await session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 3n, pageSize: 0, pageToken: "" });
      checkEqual([empty.deltas.length, empty.nextPageToken, empty.headVersion], [0, "", 3n], "ListDeltas at a head that is also the horizon");
      await expectError(session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 2n, pageSize: 0, pageToken: "" }), compacted(3n), "ListDeltas below a horizon at the head");
      checkJsonState(await downloadSnapshot(session, stream.name), { a: 1, b: 2, c: 3 }, "state at a head that is also the horizon");
      // Appends continue the chain from the head: version 4 chains to the horizon hash.
      await expectError(append(session, stream.name, [{ d: 4 }], { clientSequence: 2, expectedVersion: 2 }), { code: Status.ABORTED, reason: "VERSION_CONFLICT", metadata: { headVersion: "3", headHash: Buffer.from(first.headHash).toString("hex") } }, "a stale expected_version after compacting to the head");
      const next = await append(session, stream.name, [{ d: 4 }, { a: null }], { clientSequence: 2, expectedVersion: 3 });
      checkEqual(next.receipts.map((r) => r.version), [4n, 5n], "versions appended after compacting to the head");
      const after = await verifyStreamChain(session, stream.name);
      checkBytes(after.deltas[0]!.prevHash, first.headHash, "prev_hash of the first delta after compacting to the head");
      checkJsonState(await downloadSnapshot(session, stream.name), { b: 2, c: 3, d: 4 }, "state after appending on a compacted head");
      checkJsonState(await downloadSnapshot(session, stream.name, 4n), { a: 1, b: 2, c: 3, d: 4 }, "state at the first version after the horizon");
      // Twice in a row.
      await session.clients.streams.compactStream({ stream: stream.name, horizonVersion: 5n });
      await append(session, stream.name, [{ e: 5 }], { clientSequence: 3, expectedVersion: 5 });
      const again = await verifyStreamChain(session, stream.name);
      checkBytes(again.deltas[0]!.prevHash, next.headHash, "prev_hash after compacting to the head a second time");
      // The same on an opaque stream, whose horizon needs an uploaded snapshot at the head.
      const opaque = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const written = await append(session, opaque.name, [Buffer.from("p"), Buffer.from("q")], { clientSequence: 1 });
      const state = Buffer.from("state at 2");
      await session.clients.streams.uploadSnapshot((async function* () {
        yield { part: { $case: "header" as const, value: { stream: opaque.name, streamUid: opaque.uid, version: 2n, headHash: written.headHash, encoding: ENCODING.opaque, sizeBytes: BigInt(state.length), snapshotHash: Buffer.from(snapshotHash({ streamUid: opaque.uid, version: 2n, headHash: written.headHash, encoding: ENCODING.opaque, state })) } } };
        yield { part: { $case: "data" as const, value: state } };
      })());
      await session.clients.streams.compactStream({ stream: opaque.name, horizonVersion: 2n });
      const more = await append(session, opaque.name, [Buffer.from("r")], { clientSequence: 2 });
      checkEqual(more.headVersion, 3n, "opaque version after compacting to the head");
      const chain = await verifyStreamChain(session, opaque.name);
      checkBytes(chain.deltas[0]!.prevHash, written.headHash, "opaque prev_hash after compacting to the head");
      const snapshot = await downloadSnapshot(session, opaque.name);
      checkEqual([snapshot.header.version, snapshot.state.toString()], [2n, "state at 2"], "GetSnapshot of an opaque stream compacted to its snapshot");
    },
  }),
  defineCase({
    id: "restore.checkpoint-below-the-horizon-refused",
    requirements: ["RESTORE-005", "RESTORE-004", "CKPT-004", "RESTORE-001"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      const other = await createStream(ctx, session);
      for (let seq = 1; seq <= 5; seq++) await append(session, stream.name, [{ [`k${seq}`]: seq }], { clientSequence: seq });
      await append(session, other.name, [{ x: 1 }], { clientSequence: 1 });
      const create = (version: bigint) => session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: stream.name, version }, { stream: other.name }], resume: undefined });
      const old = (await create(2n)).checkpoint!;
      const atHorizon = (await create(4n)).checkpoint!;
      await append(session, other.name, [{ x: 2 }], { clientSequence: 2 });
      await session.clients.streams.compactStream({ stream: stream.name, horizonVersion: 4n });
      await expectError(session.clients.checkpoints.restoreCheckpoint({ name: old.name }), compacted(4n), "restoring a checkpoint whose version fell below the horizon");
      checkEqual([(await listAllDeltas(session, stream.name, 4n)).length, (await listAllDeltas(session, other.name)).length], [1, 2], "deltas after the refused restore (nothing appended to either stream)");
      await expectError(create(3n), compacted(4n), "a checkpoint at an explicit version below the horizon");
      // At the horizon the state is kept, so the restore works.
      const restored = await session.clients.checkpoints.restoreCheckpoint({ name: atHorizon.name });
      checkEqual(restored.streams.map((s) => s.version), atHorizon.entries.map((e) => (e.stream === stream.name ? 6n : 3n)), "compensating delta versions of a restore at the horizon");
      checkJsonState(await downloadSnapshot(session, stream.name), { k1: 1, k2: 2, k3: 3, k4: 4 }, "state after restoring to the horizon");
      checkJsonState(await downloadSnapshot(session, other.name), { x: 1 }, "the other stream after the restore");
    },
  }),
  defineCase({
    id: "snapshot.opaque-uploads-at-several-versions",
    requirements: ["SNAP-007", "SNAP-015", "SNAP-016", "SNAP-003", "COMPACT-011"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const hashes: Uint8Array[] = [stream.headHash];
      for (let seq = 1; seq <= 7; seq++) hashes.push((await append(session, stream.name, [Buffer.from([seq])], { clientSequence: seq })).headHash);
      const uploaded = new Map<bigint, Buffer>();
      for (const version of [4n, 2n, 6n]) {
        const state = Buffer.from(`state at ${version}`);
        const header = { stream: stream.name, streamUid: stream.uid, version, headHash: Buffer.from(hashes[Number(version)]!), encoding: ENCODING.opaque, sizeBytes: BigInt(state.length), snapshotHash: Buffer.from(snapshotHash({ streamUid: stream.uid, version, headHash: hashes[Number(version)]!, encoding: ENCODING.opaque, state })) };
        const { header: stored } = await session.clients.streams.uploadSnapshot((async function* () {
          yield { part: { $case: "header" as const, value: header } };
          yield { part: { $case: "data" as const, value: state } };
        })());
        checkEqual([stored?.version, stored?.sizeBytes, stored?.streamUid], [version, header.sizeBytes, stream.uid], `UploadSnapshot's header at version ${version}`);
        checkBytes(stored?.snapshotHash, header.snapshotHash, `UploadSnapshot's snapshot_hash at version ${version}`);
        checkBytes(stored?.headHash, hashes[Number(version)]!, `UploadSnapshot's head_hash at version ${version}`);
        uploaded.set(version, state);
      }
      const newestAtOrBelow = (version: bigint) => [...uploaded.keys()].filter((v) => v <= version).sort((x, y) => Number(y - x))[0] ?? 0n;
      const expectSnapshot = async (requested: bigint | undefined, what: string) => {
        const snapshot = await downloadSnapshot(session, stream.name, requested);
        const expected = newestAtOrBelow(requested ?? 7n);
        checkEqual(snapshot.header.version, expected, `GetSnapshot ${what}: the newest upload at or below it`);
        checkBytes(snapshot.header.headHash, hashes[Number(expected)]!, `GetSnapshot ${what}: head_hash is the chain hash at the snapshot's version`);
        checkBytes(snapshot.state, uploaded.get(expected) ?? Buffer.alloc(0), `GetSnapshot ${what}: the uploaded bytes`);
      };
      for (let version = 0n; version <= 7n; version++) await expectSnapshot(version, `at version ${version}`);
      await expectSnapshot(undefined, "without a version");
      await session.clients.streams.compactStream({ stream: stream.name, horizonVersion: 4n });
      for (const version of [4n, 5n, 6n, 7n]) await expectSnapshot(version, `at version ${version} after compacting to 4`);
      await expectSnapshot(undefined, "without a version after compacting to 4");
      checkEqual((await session.clients.streams.getStream({ name: stream.name })).stream?.horizonVersion, 4n, "horizon after compaction");
    },
  }),
];
