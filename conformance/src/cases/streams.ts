import { randomBytes } from "node:crypto";
import { defineCase } from "../harness/define-case.js";
import { check, checkBytes, checkEqual, expectError, Status } from "../harness/expect.js";
import { snapshotHash } from "../harness/hashing.js";
import { append, checkJsonState, createStream, downloadSnapshot, emptyStream, ENCODING, listAllDeltas, POLICY, verifyStreamChain } from "../harness/streams.js";

/** Streams, delta listing and paging, snapshots and compaction. */
export const STREAM_CASES = [
  defineCase({
    id: "stream.create-returns-genesis",
    requirements: ["STREAM-001", "STREAM-002", "GEN-042"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      for (const encoding of [ENCODING.jsonPatch, ENCODING.mergePatch, ENCODING.opaque]) {
        const stream = await createStream(ctx, session, { encoding, policy: POLICY.strict, type: "org.example.genesis-check" });
        check(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(stream.uid), `Stream.uid must be a lowercase UUID, got ${stream.uid}`);
        checkEqual([stream.type, stream.encoding, stream.conflictPolicy, stream.horizonVersion], ["org.example.genesis-check", encoding, POLICY.strict, 0n], "created stream fields");
        checkBytes(stream.horizonHash, stream.headHash, "horizon_hash of a new stream");
        checkEqual(stream.ownerPlatform, `platforms/${session.platform.id}`, "owner_platform");
      }
      const minted = await session.clients.streams.createStream({ parent: session.subject, streamId: "", stream: { ...emptyStream(), type: "org.example.minted", encoding: ENCODING.opaque, conflictPolicy: POLICY.blind } });
      check(new RegExp(`^${session.subject}/streams/[a-z0-9][a-z0-9-]{0,62}$`).test(minted.stream?.name ?? ""), `minted stream name, got ${minted.stream?.name}`);
    },
  }),
  defineCase({
    id: "stream.create-validation",
    requirements: ["STREAM-003", "GEN-031", "STREAM-004", "VER-010", "VER-012", "ERR-004"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const base: ReturnType<typeof emptyStream> = { ...emptyStream(), type: "org.example.ok", encoding: ENCODING.mergePatch, conflictPolicy: POLICY.blind };
      const bad = async (what: string, request: { streamId?: string; stream?: typeof base | undefined }, field: string) =>
        expectError(session.clients.streams.createStream({ parent: session.subject, streamId: request.streamId ?? ctx.uniqueId("v"), stream: "stream" in request ? request.stream : base }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: [field] }, what);
      await bad("unspecified encoding", { stream: { ...base, encoding: 0 } }, "stream.encoding");
      await bad("unspecified conflict policy", { stream: { ...base, conflictPolicy: 0 } }, "stream.conflict_policy");
      await bad("unknown encoding number", { stream: { ...base, encoding: 99 as typeof base.encoding } }, "stream.encoding");
      await bad("type without a dot", { stream: { ...base, type: "nodot" } }, "stream.type");
      await bad("stream id with upper case", { streamId: "Bad-Id" }, "stream_id");
      await bad("stream id ending with a dash", { streamId: "bad-" }, "stream_id");
      await bad("stream id of 64 characters", { streamId: "a".repeat(64) }, "stream_id");
      const existing = await createStream(ctx, session);
      const id = existing.name.split("/").pop()!;
      await expectError(session.clients.streams.createStream({ parent: session.subject, streamId: id, stream: { ...base, encoding: ENCODING.opaque } }), { code: Status.ALREADY_EXISTS, reason: "STREAM_ALREADY_EXISTS" }, "create with an existing stream id");
      const { stream } = await session.clients.streams.getStream({ name: existing.name });
      checkEqual(stream?.encoding, existing.encoding, "the existing stream is unchanged");
    },
  }),
  defineCase({
    id: "stream.list-paging-and-type-filter",
    requirements: ["STREAM-011", "STREAM-012", "DELTA-021", "DELTA-022", "DELTA-024"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const created = [];
      for (let i = 0; i < 7; i++) created.push(await createStream(ctx, session, { type: i % 2 === 0 ? "org.example.even" : "org.example.odd" }));
      const names: string[] = [];
      let pageToken = "";
      do {
        const page = await session.clients.streams.listStreams({ parent: session.subject, pageSize: 3, pageToken, type: "" });
        check(page.streams.length <= 3, `a page of size 3 returned ${page.streams.length}`);
        names.push(...page.streams.map((s) => s.name));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      const expected = created.map((s) => s.name).sort();
      checkEqual(names, expected, "stream names across pages (each once, ordered by name)");
      const even = await session.clients.streams.listStreams({ parent: session.subject, pageSize: 0, pageToken: "", type: "org.example.even" });
      checkEqual(even.streams.map((s) => s.name), created.filter((_, i) => i % 2 === 0).map((s) => s.name).sort(), "streams filtered by type");
      const first = await session.clients.streams.listStreams({ parent: session.subject, pageSize: 2, pageToken: "", type: "" });
      await expectError(session.clients.streams.listStreams({ parent: session.subject, pageSize: 2, pageToken: first.nextPageToken, type: "org.example.odd" }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_PAGE_TOKEN" }, "page token reused with another type filter");
      await expectError(session.clients.streams.listStreams({ parent: session.subject, pageSize: 2, pageToken: "garbage-token", type: "" }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_PAGE_TOKEN" }, "garbage page token");
      await expectError(session.clients.streams.listStreams({ parent: session.subject, pageSize: -1, pageToken: "", type: "" }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["page_size"] }, "negative page size");
    },
  }),
  defineCase({
    id: "stream.delete-then-recreate-is-new",
    requirements: ["STREAM-020", "STREAM-022", "STREAM-023", "GEN-041"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      await append(session, stream.name, [{ a: 1 }], { clientSequence: 1 });
      await session.clients.streams.deleteStream({ name: stream.name });
      const gone = { code: Status.NOT_FOUND, reason: "STREAM_NOT_FOUND" } as const;
      await expectError(session.clients.streams.getStream({ name: stream.name }), gone, "GetStream after delete");
      await expectError(listAllDeltas(session, stream.name), gone, "ListDeltas after delete");
      await expectError(append(session, stream.name, [{ a: 2 }], { clientSequence: 2 }), gone, "AppendDeltas after delete");
      await expectError(downloadSnapshot(session, stream.name), gone, "GetSnapshot after delete");
      await expectError(session.clients.streams.deleteStream({ name: stream.name }), gone, "DeleteStream of a deleted stream");
      const list = await session.clients.streams.listStreams({ parent: session.subject, pageSize: 0, pageToken: "", type: "" });
      check(!list.streams.some((s) => s.name === stream.name), "ListStreams must not return a deleted stream");
      const again = await createStream(ctx, session, { streamId: stream.name.split("/").pop()! });
      check(again.uid !== stream.uid, "a recreated stream must get a new uid");
      const first = await append(session, again.name, [{ b: 1 }], { clientSequence: 1 });
      checkEqual([first.headVersion, first.replayed], [1n, false], "client sequences restart at 1 on the recreated stream");
    },
  }),
  defineCase({
    id: "delta.list-after-version-and-bounds",
    requirements: ["DELTA-010", "DELTA-012", "DELTA-013", "DELTA-023", "DELTA-003"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      for (let seq = 1; seq <= 5; seq++) await append(session, stream.name, [{ n: seq }], { clientSequence: seq });
      const all = await listAllDeltas(session, stream.name);
      const after2 = await session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 2n, pageSize: 0, pageToken: "" });
      checkEqual(after2.deltas.map((d) => d.version), [3n, 4n, 5n], "ListDeltas after_version 2");
      checkEqual(after2.headVersion, 5n, "ListDeltasResponse.head_version");
      checkEqual(after2.nextPageToken, "", "next_page_token when the page reaches the head");
      checkEqual(after2.deltas, all.slice(2), "the same versions read twice are identical");
      const page = await session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 2, pageToken: "" });
      checkEqual(page.deltas.map((d) => d.version), [1n, 2n], "first page of 2");
      check(page.nextPageToken !== "", "a page that ends before the head must carry a token");
      const atHead = await session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 5n, pageSize: 0, pageToken: "" });
      checkEqual([atHead.deltas.length, atHead.nextPageToken], [0, ""], "ListDeltas at the head");
      await expectError(session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 6n, pageSize: 0, pageToken: "" }), { code: Status.OUT_OF_RANGE, reason: "VERSION_AHEAD_OF_HEAD", metadata: { headVersion: "5" } }, "ListDeltas after the head");
      const paged = await listAllDeltas(session, stream.name, 0n, 2);
      checkEqual(paged, all, "paging by 2 yields every delta once, in order");
    },
  }),
  defineCase({
    id: "hash.chain-verifies-every-encoding",
    requirements: ["DELTA-002", "HASH-001", "HASH-002", "HASH-003", "HASH-005", "HASH-010", "HASH-011", "HASH-012"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const patch = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      await append(session, patch.name, [[{ op: "add", path: "/list", value: [] }], [{ op: "add", path: "/list/-", value: "x" }]], { clientSequence: 1 });
      await append(session, patch.name, [[{ op: "add", path: "/k", value: { z: 1, a: 2 } }]], { clientSequence: 2 });
      await verifyStreamChain(session, patch.name);
      const merge = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      await append(session, merge.name, [{ a: { b: 1 } }, { a: { b: null, c: [1, 2] } }], { clientSequence: 1 });
      await verifyStreamChain(session, merge.name);
      const opaque = await createStream(ctx, session, { encoding: ENCODING.opaque });
      await append(session, opaque.name, [randomBytes(33), randomBytes(1)], { clientSequence: 1 });
      await append(session, opaque.name, [randomBytes(200)], { clientSequence: 2 });
      await verifyStreamChain(session, opaque.name);
    },
  }),
  defineCase({
    id: "snapshot.json-patch-states-match",
    requirements: ["SNAP-001", "SNAP-002", "SNAP-003", "SNAP-004", "SNAP-005", "SNAP-006", "HASH-013", "HASH-030", "HASH-034"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      const steps: [unknown[], unknown][] = [
        [[{ op: "add", path: "/title", value: "Lesson 1" }, { op: "add", path: "/done", value: [] }], { title: "Lesson 1", done: [] }],
        [[{ op: "add", path: "/done/-", value: "intro" }, { op: "add", path: "/position", value: { t: 12.5 } }], { title: "Lesson 1", done: ["intro"], position: { t: 12.5 } }],
        [[{ op: "move", from: "/title", path: "/name" }, { op: "copy", from: "/position", path: "/saved" }], { name: "Lesson 1", done: ["intro"], position: { t: 12.5 }, saved: { t: 12.5 } }],
        [[{ op: "test", path: "/done/0", value: "intro" }, { op: "remove", path: "/saved" }, { op: "replace", path: "/position/t", value: 40 }], { name: "Lesson 1", done: ["intro"], position: { t: 40 } }],
      ];
      let seq = 1;
      for (const [patch] of steps) await append(session, stream.name, [patch], { clientSequence: seq++ });
      checkJsonState(await downloadSnapshot(session, stream.name, 0n), {}, "state at version 0");
      for (const [index, [, expected]] of steps.entries()) {
        const snapshot = await downloadSnapshot(session, stream.name, BigInt(index + 1));
        checkEqual(snapshot.header.version, BigInt(index + 1), "snapshot header version");
        checkJsonState(snapshot, expected, `state at version ${index + 1}`);
      }
      const head = await downloadSnapshot(session, stream.name);
      checkEqual(head.header.version, 4n, "snapshot without version is at the head");
      checkJsonState(head, steps[3]![1], "state at the head");
      const { deltas } = await verifyStreamChain(session, stream.name);
      checkBytes(head.header.headHash, deltas[3]!.hash, "snapshot head_hash equals the chain hash at its version");
      await expectError(downloadSnapshot(session, stream.name, 5n), { code: Status.OUT_OF_RANGE, reason: "VERSION_AHEAD_OF_HEAD", metadata: { headVersion: "4" } }, "GetSnapshot above the head");
    },
  }),
  defineCase({
    id: "snapshot.merge-patch-states-match",
    requirements: ["SNAP-004", "SNAP-005"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      await append(session, stream.name, [{ cart: { apple: 2, pear: 1 }, owner: "x" }], { clientSequence: 1 });
      await append(session, stream.name, [{ cart: { pear: null, fig: 5 }, owner: null, note: [1, { a: null }] }], { clientSequence: 2 });
      // RFC 7396: a non-object patch replaces the whole target; null inside arrays stays.
      checkJsonState(await downloadSnapshot(session, stream.name, 2n), { cart: { apple: 2, fig: 5 }, note: [1, { a: null }] }, "state after two merge patches");
      await append(session, stream.name, [{ cart: "emptied" }], { clientSequence: 3 });
      checkJsonState(await downloadSnapshot(session, stream.name), { cart: "emptied", note: [1, { a: null }] }, "state after replacing a member with a string");
    },
  }),
  defineCase({
    id: "snapshot.large-chunked-transfer",
    requirements: ["SNAP-002", "SNAP-007", "SNAP-015", "SNAP-003"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const maxChunk = ctx.limits.maxChunkBytes;
      check(maxChunk > 0, "Limits.max_chunk_bytes must be positive");
      // What this case uploads in; a server's chunks down may be as long as max_chunk_bytes.
      const chunk = Math.min(maxChunk, 65536);
      // States more than three of the server's chunks long, so that they must arrive in at
      // least four; a server whose chunks are longer than 4 MiB gets states of 12 MiB and more.
      const several = Math.min(Math.min(maxChunk, 4 * 1024 * 1024) * 3 + 1234, Number(ctx.limits.maxSnapshotBytes) - 1024);
      // JSON: a state several chunks long, materialized by the server.
      const json = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      const big = "x".repeat(Math.min(ctx.limits.maxDeltaBytes - 100, 200_000));
      const expected: Record<string, string> = {};
      let seq = 1;
      // `"kN":"…",` is the string and at most 10 bytes more.
      const members = Math.max(3, Math.min(Math.ceil(several / big.length), Math.floor((Number(ctx.limits.maxSnapshotBytes) - 2) / (big.length + 10))));
      for (let i = 0; i < members; i++) {
        const key = `k${i}`;
        expected[key] = big;
        await append(session, json.name, [{ [key]: big }], { clientSequence: seq++ });
      }
      const download = await downloadSnapshot(session, json.name, undefined, ctx.limits.maxChunkBytes);
      checkJsonState(download, expected, "large JSON state");
      check(download.chunks >= 2 || download.state.length <= ctx.limits.maxChunkBytes, "a state larger than max_chunk_bytes must come in several chunks");
      // Opaque: upload a state in several chunks at version 2, download it back.
      const opaque = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const appended = await append(session, opaque.name, [Buffer.from("u1"), Buffer.from("u2")], { clientSequence: 1 });
      const state = randomBytes(several);
      const header = { stream: opaque.name, streamUid: opaque.uid, version: 2n, headHash: appended.headHash, encoding: ENCODING.opaque, sizeBytes: BigInt(state.length), snapshotHash: Buffer.from(snapshotHash({ streamUid: opaque.uid, version: 2n, headHash: appended.headHash, encoding: ENCODING.opaque, state })) };
      async function* upload() {
        yield { part: { $case: "header" as const, value: header } };
        for (let offset = 0; offset < state.length; offset += chunk) yield { part: { $case: "data" as const, value: state.subarray(offset, offset + chunk) } };
      }
      const stored = await session.clients.streams.uploadSnapshot(upload());
      checkBytes(stored.header?.snapshotHash, header.snapshotHash, "UploadSnapshotResponse.header.snapshot_hash");
      const back = await downloadSnapshot(session, opaque.name, undefined, ctx.limits.maxChunkBytes);
      checkEqual(back.header.version, 2n, "opaque snapshot version");
      checkBytes(back.state, state, "opaque snapshot bytes round trip");
      check(back.chunks >= Math.ceil(state.length / maxChunk), `a ${state.length}-byte state must arrive in chunks of at most ${maxChunk} bytes, got ${back.chunks} chunks`);
    },
  }),
  defineCase({
    id: "snapshot.upload-mismatch-refused",
    requirements: ["SNAP-010", "SNAP-012", "SNAP-014", "SNAP-007"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const opaque = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const appended = await append(session, opaque.name, [Buffer.from("u1")], { clientSequence: 1 });
      const state = Buffer.from("the real state");
      const goodHash = Buffer.from(snapshotHash({ streamUid: opaque.uid, version: 1n, headHash: appended.headHash, encoding: ENCODING.opaque, state }));
      const send = (header: object, data: Buffer) =>
        session.clients.streams.uploadSnapshot((async function* () {
          yield { part: { $case: "header" as const, value: { stream: opaque.name, streamUid: opaque.uid, version: 1n, headHash: appended.headHash, encoding: ENCODING.opaque, sizeBytes: BigInt(state.length), snapshotHash: goodHash, ...header } } };
          yield { part: { $case: "data" as const, value: data } };
        })());
      await expectError(send({}, Buffer.from("the fake state")), { code: Status.INVALID_ARGUMENT, reason: "SNAPSHOT_MISMATCH" }, "upload whose bytes do not match the hash");
      await expectError(send({}, state.subarray(0, 4)), { code: Status.INVALID_ARGUMENT, reason: "SNAPSHOT_MISMATCH" }, "upload shorter than size_bytes");
      await expectError(send({ version: 9n }, state), { code: Status.OUT_OF_RANGE, reason: "VERSION_AHEAD_OF_HEAD" }, "upload above the head");
      const untouched = await downloadSnapshot(session, opaque.name);
      checkEqual([untouched.header.version, untouched.state.length], [0n, 0], "GetSnapshot after refused uploads (still the empty state at version 0)");
      const json = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      await expectError(session.clients.streams.uploadSnapshot((async function* () {
        yield { part: { $case: "header" as const, value: { stream: json.name, streamUid: json.uid, version: 0n, headHash: json.headHash, encoding: ENCODING.mergePatch, sizeBytes: 2n, snapshotHash: Buffer.alloc(32) } } };
        yield { part: { $case: "data" as const, value: Buffer.from("{}") } };
      })()), { code: Status.FAILED_PRECONDITION, reason: "ENCODING_UNSUPPORTED" }, "upload to a JSON stream");
    },
  }),
  defineCase({
    id: "compact.horizon-enforced-and-verifiable",
    requirements: ["COMPACT-001", "COMPACT-002", "COMPACT-010", "COMPACT-011", "COMPACT-012", "COMPACT-013", "DELTA-011", "COMPACT-003"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      for (let seq = 1; seq <= 6; seq++) await append(session, stream.name, [{ [`k${seq}`]: seq }], { clientSequence: seq });
      const before = await verifyStreamChain(session, stream.name);
      const compacted = await session.clients.streams.compactStream({ stream: stream.name, horizonVersion: 4n });
      checkEqual(compacted.stream?.horizonVersion, 4n, "horizon_version after CompactStream");
      checkBytes(compacted.stream?.horizonHash, before.deltas[3]!.hash, "horizon_hash is the chain hash at the horizon");
      await expectError(session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 3n, pageSize: 0, pageToken: "" }), { code: Status.FAILED_PRECONDITION, reason: "HISTORY_COMPACTED", metadata: { horizonVersion: "4" } }, "ListDeltas below the horizon");
      await expectError(session.clients.streams.listDeltas({ stream: stream.name, afterVersion: 0n, pageSize: 0, pageToken: "" }), { code: Status.FAILED_PRECONDITION, reason: "HISTORY_COMPACTED" }, "ListDeltas from 0 after compaction");
      const after = await verifyStreamChain(session, stream.name);
      checkEqual(after.deltas, before.deltas.slice(4), "deltas above the horizon are unchanged");
      const atHorizon = await downloadSnapshot(session, stream.name, 4n);
      checkJsonState(atHorizon, { k1: 1, k2: 2, k3: 3, k4: 4 }, "snapshot at the horizon");
      checkBytes(atHorizon.header.headHash, compacted.stream!.horizonHash, "snapshot at the horizon carries horizon_hash");
      await expectError(downloadSnapshot(session, stream.name, 3n), { code: Status.FAILED_PRECONDITION, reason: "HISTORY_COMPACTED" }, "snapshot below the horizon");
      const unchanged = await session.clients.streams.compactStream({ stream: stream.name, horizonVersion: 2n });
      checkEqual(unchanged.stream?.horizonVersion, 4n, "compacting below the horizon changes nothing");
      await expectError(session.clients.streams.compactStream({ stream: stream.name, horizonVersion: 99n }), { code: Status.OUT_OF_RANGE, reason: "VERSION_AHEAD_OF_HEAD" }, "compacting above the head");
      await append(session, stream.name, [{ k7: 7 }], { clientSequence: 7 });
      await verifyStreamChain(session, stream.name);
    },
  }),
];
