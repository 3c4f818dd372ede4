import { defineCase } from "../harness/define-case.js";
import { check, checkBytes, checkEqual, expectError, Status } from "../harness/expect.js";
import { append, appendRequest, createStream, downloadSnapshot, checkJsonState, ENCODING, jsonBytes, listAllDeltas, POLICY, verifyStreamChain } from "../harness/streams.js";

/**
 * The largest state `append.json-state-bound` builds to reach max_snapshot_bytes: the
 * reference server's 64 MiB, filled in seconds when an append costs what it touches.
 */
const MAX_FILLED_STATE = 64 * 1024 * 1024;

/** Exactly-once appends, optimistic concurrency and batch atomicity. */
export const APPEND_CASES = [
  defineCase({
    id: "append.retry-returns-stored-outcome",
    requirements: ["APPEND-013", "APPEND-017", "APPEND-051", "APPEND-011"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      const request = appendRequest(stream.name, [{ a: 1 }, { b: 2 }], { clientSequence: 1, expectedVersion: 0 });
      const first = await session.clients.streams.appendDeltas(request);
      checkEqual(first.replayed, false, "replayed on the first response");
      // Another device moves the stream on, so expected_version 0 is stale: a replay must
      // still win. (Sequence 1 stays this device's latest, whose outcome is kept: APPEND-060.)
      const other = await ctx.session({ accountId: session.accountId });
      await append(other, stream.name, [{ c: 3 }], { clientSequence: 1 });
      const retry = await session.clients.streams.appendDeltas(request);
      checkEqual(retry.replayed, true, "replayed on a retry of an acknowledged request");
      checkEqual(retry.receipts, first.receipts, "receipts of the replay");
      checkEqual(retry.headVersion, first.headVersion, "head_version of the replay (stored outcome, not the current head)");
      checkBytes(retry.headHash, first.headHash, "head_hash of the replay");
      const { stream: after } = await verifyStreamChain(session, stream.name);
      checkEqual(after.headVersion, 3n, "head after one retry (nothing appended by the retry)");
    },
  }),
  defineCase({
    id: "append.gap-refused",
    requirements: ["APPEND-012", "APPEND-015"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      await expectError(append(session, stream.name, [{ a: 1 }], { clientSequence: 2 }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_GAP", metadata: { expectedSequence: "1" } }, "first append with client_sequence 2");
      await append(session, stream.name, [{ a: 1 }], { clientSequence: 1 });
      await expectError(append(session, stream.name, [{ a: 2 }], { clientSequence: 3 }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_GAP", metadata: { expectedSequence: "2" } }, "client_sequence 3 after 1");
      const { stream: after } = await verifyStreamChain(session, stream.name);
      checkEqual(after.headVersion, 1n, "head after refused gaps");
      const ok = await append(session, stream.name, [{ a: 2 }], { clientSequence: 2 });
      checkEqual(ok.headVersion, 2n, "the refused number is still free");
    },
  }),
  defineCase({
    id: "append.reuse-with-different-content-refused",
    requirements: ["APPEND-014"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      await append(session, stream.name, [{ a: 1 }], { clientSequence: 1 });
      await expectError(append(session, stream.name, [{ a: 999 }], { clientSequence: 1 }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_REUSED", metadata: { clientSequence: "1" } }, "sequence 1 reused with another payload");
      await expectError(append(session, stream.name, [{ a: 1 }], { clientSequence: 1, expectedVersion: 0 }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_REUSED" }, "sequence 1 reused with an expected_version added");
      const deltas = await listAllDeltas(session, stream.name);
      checkEqual(deltas.length, 1, "deltas after refused reuse");
    },
  }),
  defineCase({
    id: "append.reuse-names-expected-sequence",
    requirements: ["APPEND-014", "APPEND-011"],
    profile: "core",
    async run(ctx) {
      // A reinstalled device that kept its id starts again at 1: the refusal must tell it
      // where its sequence stands, and that number must then be accepted.
      const session = await ctx.session();
      const other = await ctx.session({ accountId: session.accountId });
      const stream = await createStream(ctx, session);
      for (const clientSequence of [1, 2, 3]) await append(session, stream.name, [{ n: clientSequence }], { clientSequence });
      await append(other, stream.name, [{ other: 1 }], { clientSequence: 1 });
      // Sequence 3, the latest, keeps its outcome on every server (APPEND-060); older ones may be expired.
      await expectError(append(session, stream.name, [{ fresh: 3 }], { clientSequence: 3 }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_REUSED", metadata: { clientSequence: "3", expectedSequence: "4" } }, "sequence 3 reused after 3 acknowledged appends");
      await expectError(append(other, stream.name, [{ other: 2 }], { clientSequence: 1 }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_REUSED", metadata: { clientSequence: "1", expectedSequence: "2" } }, "another device's reuse names its own next sequence");
      const resumed = await append(session, stream.name, [{ fresh: 1 }], { clientSequence: 4 });
      checkEqual(resumed.headVersion, 5n, "head after continuing at expectedSequence");
    },
  }),
  defineCase({
    id: "append.outcome-retention",
    requirements: ["APPEND-060", "APPEND-061", "APPEND-013"],
    profile: "core",
    async run(ctx) {
      // The declared number of latest outcomes replays; the number before them is expired,
      // whether or not the request is the same, and appends nothing.
      const retained = ctx.limits.clientOutcomesRetained;
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      const kept = retained === 0 ? 3 : retained;
      const total = retained === 0 ? kept : kept + 1;
      const requests = Array.from({ length: total }, (_, i) => appendRequest(stream.name, [{ n: i + 1 }], { clientSequence: i + 1 }));
      const firsts = [];
      for (const request of requests) firsts.push(await session.clients.streams.appendDeltas(request));
      for (let i = total - kept; i < total; i++) {
        const retry = await session.clients.streams.appendDeltas(requests[i]!);
        checkEqual([retry.replayed, retry.headVersion], [true, firsts[i]!.headVersion], `retry of retained sequence ${i + 1} of ${total}`);
      }
      if (retained !== 0) {
        const expired = { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_EXPIRED", metadata: { clientSequence: "1", expectedSequence: String(total + 1) } };
        await expectError(session.clients.streams.appendDeltas(requests[0]!), expired, `retry of sequence 1 with client_outcomes_retained ${retained}`);
        await expectError(append(session, stream.name, [{ other: 1 }], { clientSequence: 1 }), expired, "another request with expired sequence 1");
      }
      const { stream: after } = await verifyStreamChain(session, stream.name);
      checkEqual(after.headVersion, BigInt(total), "head after retries (nothing appended by them)");
      const next = await append(session, stream.name, [{ n: total + 1 }], { clientSequence: total + 1 });
      checkEqual(next.headVersion, BigInt(total + 1), "the next sequence after the retries");
    },
  }),
  defineCase({
    id: "append.client-sequence-range",
    requirements: ["APPEND-018", "APPEND-012"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      const largest = 2n ** 53n - 1n;
      // In range, so judged by the sequence rules: a gap on a fresh stream, not a bad field.
      await expectError(append(session, stream.name, [{ a: 1 }], { clientSequence: largest }), { code: Status.FAILED_PRECONDITION, reason: "CLIENT_SEQUENCE_GAP", metadata: { expectedSequence: "1" } }, "client_sequence 2^53 - 1 on a fresh stream");
      for (const beyond of [largest + 1n, 2n ** 62n, 2n ** 64n - 1n]) {
        await expectError(append(session, stream.name, [{ a: 1 }], { clientSequence: beyond }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["client_sequence"] }, `client_sequence ${beyond}`);
      }
      const { stream: after } = await verifyStreamChain(session, stream.name);
      checkEqual(after.headVersion, 0n, "head after refused out-of-range sequences");
    },
  }),
  defineCase({
    id: "append.sequence-per-device-and-stream",
    requirements: ["APPEND-011", "APPEND-034"],
    profile: "core",
    async run(ctx) {
      const phone = await ctx.session();
      const laptop = await ctx.session({ accountId: phone.accountId });
      checkEqual(laptop.subject, phone.subject, "same platform account must map to the same subject");
      const one = await createStream(ctx, phone);
      const two = await createStream(ctx, phone);
      await append(phone, one.name, [{ p: 1 }], { clientSequence: 1 });
      await append(laptop, one.name, [{ l: 1 }], { clientSequence: 1 });
      await append(phone, two.name, [{ p: 1 }], { clientSequence: 1 });
      await append(phone, one.name, [{ p: 2 }], { clientSequence: 2 });
      const deltas = await listAllDeltas(phone, one.name);
      checkEqual(deltas.map((d) => [d.device, d.clientSequence]), [[phone.device, 1n], [laptop.device, 1n], [phone.device, 2n]], "device and client_sequence of each delta");
    },
  }),
  defineCase({
    id: "append.client-sequence-zero-invalid",
    requirements: ["APPEND-010", "APPEND-033"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      await expectError(append(session, stream.name, [{ a: 1 }], { clientSequence: 0 }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["client_sequence"] }, "client_sequence 0");
      await expectError(append(session, stream.name, [], { clientSequence: 1 }), { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD", fieldViolations: ["deltas"] }, "empty batch");
    },
  }),
  defineCase({
    id: "append.unbound-token-needs-device",
    requirements: ["APPEND-002"],
    profile: "core",
    async run(ctx) {
      const owner = await ctx.session();
      const stream = await createStream(ctx, owner);
      const unbound = await ctx.session({ accountId: owner.accountId, deviceId: null });
      checkEqual(unbound.device, "", "ExchangeTokenResponse.device of an unbound token");
      await expectError(append(unbound, stream.name, [{ a: 1 }], { clientSequence: 1 }), { code: Status.FAILED_PRECONDITION, reason: "DEVICE_REQUIRED" }, "append with an unbound token");
    },
  }),
  defineCase({
    id: "append.stale-version-aborted",
    requirements: ["APPEND-020", "APPEND-022", "ERR-003", "HASH-004"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { policy: POLICY.blind });
      const first = await append(session, stream.name, [{ a: 1 }, { a: 2 }], { clientSequence: 1, expectedVersion: 0 });
      const error = await expectError(
        append(session, stream.name, [{ a: 3 }], { clientSequence: 2, expectedVersion: 1 }),
        { code: Status.ABORTED, reason: "VERSION_CONFLICT", metadata: { headVersion: "2", headHash: Buffer.from(first.headHash).toString("hex") } },
        "append with expected_version 1 when the head is 2",
      );
      check(/^[0-9a-f]{64}$/.test(error.info.metadata.headHash ?? ""), "headHash metadata must be 64 lowercase hex digits");
      await expectError(append(session, stream.name, [{ a: 3 }], { clientSequence: 2, expectedVersion: 7 }), { code: Status.ABORTED, reason: "VERSION_CONFLICT", metadata: { headVersion: "2" } }, "append with expected_version ahead of the head");
      const blind = await append(session, stream.name, [{ a: 3 }], { clientSequence: 2 });
      checkEqual(blind.headVersion, 3n, "blind append on an ALLOW_BLIND_APPEND stream goes after the head");
    },
  }),
  defineCase({
    id: "append.strict-policy-requires-expected-version",
    requirements: ["APPEND-021"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { policy: POLICY.strict });
      checkEqual(stream.conflictPolicy, POLICY.strict, "Stream.conflict_policy as declared");
      await expectError(append(session, stream.name, [{ a: 1 }], { clientSequence: 1 }), { code: Status.FAILED_PRECONDITION, reason: "EXPECTED_VERSION_REQUIRED" }, "blind append on a REQUIRE_EXPECTED_VERSION stream");
      const ok = await append(session, stream.name, [{ a: 1 }], { clientSequence: 1, expectedVersion: 0 });
      checkEqual(ok.headVersion, 1n, "append with expected_version after the refused blind one");
    },
  }),
  defineCase({
    id: "append.concurrent-expected-version-one-wins",
    requirements: ["APPEND-023"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { policy: POLICY.strict });
      const devices = await Promise.all(Array.from({ length: 5 }, () => ctx.session({ accountId: session.accountId })));
      const outcomes = await Promise.allSettled(devices.map((device, i) => append(device, stream.name, [{ writer: i }], { clientSequence: 1, expectedVersion: 0 })));
      const winners = outcomes.filter((o) => o.status === "fulfilled").length;
      checkEqual(winners, 1, "appends that won a race on expected_version 0");
      for (const outcome of outcomes) {
        if (outcome.status === "rejected") await expectError(Promise.reject(outcome.reason), { code: Status.ABORTED, reason: "VERSION_CONFLICT" }, "a losing racer");
      }
      await verifyStreamChain(session, stream.name);
    },
  }),
  defineCase({
    id: "append.batch-atomic-on-failure",
    requirements: ["APPEND-031", "APPEND-042", "GEN-011"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      await append(session, stream.name, [[{ op: "add", path: "/n", value: 1 }]], { clientSequence: 1 });
      const before = await verifyStreamChain(session, stream.name);
      // The second delta tests a value the first one just replaced: it must fail, and the
      // first must not survive.
      await expectError(
        append(session, stream.name, [[{ op: "replace", path: "/n", value: 2 }], [{ op: "test", path: "/n", value: 1 }], [{ op: "add", path: "/m", value: 3 }]], { clientSequence: 2 }),
        { code: Status.FAILED_PRECONDITION, reason: "PATCH_NOT_APPLICABLE", metadata: { index: "1" } },
        "batch whose second delta does not apply",
      );
      const after = await verifyStreamChain(session, stream.name);
      checkEqual(after.stream.headVersion, before.stream.headVersion, "head after a failed batch");
      checkJsonState(await downloadSnapshot(session, stream.name), { n: 1 }, "state after a failed batch");
      const ok = await append(session, stream.name, [[{ op: "replace", path: "/n", value: 2 }], [{ op: "test", path: "/n", value: 2 }]], { clientSequence: 2 });
      checkEqual(ok.receipts.map((r) => r.version), [2n, 3n], "versions of the next batch (sequence 2 was not consumed)");
    },
  }),
  defineCase({
    id: "append.batch-versions-and-receipts",
    requirements: ["APPEND-030", "APPEND-032", "DELTA-004", "DELTA-001"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      await append(session, stream.name, [{ x: 0 }], { clientSequence: 1 });
      const batch = await append(session, stream.name, [{ x: 1 }, { y: 2 }, { z: 3 }], { clientSequence: 2 });
      checkEqual(batch.receipts.map((r) => r.version), [2n, 3n, 4n], "receipt versions");
      checkEqual(batch.headVersion, 4n, "head_version after the batch");
      checkBytes(batch.headHash, batch.receipts[2]!.hash, "head_hash equals the last receipt's hash");
      const { deltas } = await verifyStreamChain(session, stream.name);
      for (const delta of deltas.slice(1)) {
        checkEqual([delta.batchFirstVersion, delta.batchSize], [2n, 3], `batch fields of delta ${delta.version}`);
        checkBytes(delta.hash, batch.receipts[Number(delta.version) - 2]!.hash, `receipt hash vs listed hash of ${delta.version}`);
        check(delta.commitTime !== undefined, "Delta.commit_time must be set");
        checkEqual(delta.stream, stream.name, "Delta.stream");
      }
      checkEqual([deltas[0]!.batchFirstVersion, deltas[0]!.batchSize], [1n, 1], "batch fields of a single-delta batch");
    },
  }),
  defineCase({
    id: "append.malformed-json-refused",
    requirements: ["APPEND-040", "APPEND-041"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const merge = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      await expectError(append(session, merge.name, [{ ok: 1 }, Buffer.from("{not json"), { ok: 2 }], { clientSequence: 1 }), { code: Status.INVALID_ARGUMENT, reason: "MALFORMED_PAYLOAD", metadata: { index: "1" } }, "invalid JSON in a merge-patch batch");
      await expectError(append(session, merge.name, [Buffer.from([0x22, 0xff, 0xfe, 0x22])], { clientSequence: 1 }), { code: Status.INVALID_ARGUMENT, reason: "MALFORMED_PAYLOAD", metadata: { index: "0" } }, "invalid UTF-8 in a JSON string");
      const patch = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      await expectError(append(session, patch.name, [{ op: "add", path: "/a", value: 1 }], { clientSequence: 1 }), { code: Status.INVALID_ARGUMENT, reason: "MALFORMED_PAYLOAD", metadata: { index: "0" } }, "a JSON Patch that is an object, not an array");
      await expectError(append(session, patch.name, [[{ op: "frobnicate", path: "/a" }]], { clientSequence: 1 }), { code: Status.INVALID_ARGUMENT, reason: "MALFORMED_PAYLOAD" }, "unknown JSON Patch op");
      await expectError(append(session, patch.name, [[{ op: "add", value: 1 }]], { clientSequence: 1 }), { code: Status.INVALID_ARGUMENT, reason: "MALFORMED_PAYLOAD" }, "JSON Patch op without path");
      checkEqual((await listAllDeltas(session, merge.name)).length, 0, "deltas stored after refused payloads");
      const ok = await append(session, patch.name, [[{ op: "add", path: "/a", value: 1 }]], { clientSequence: 1 });
      checkEqual(ok.headVersion, 1n, "a valid append after refused ones");
    },
  }),
  defineCase({
    id: "append.patch-not-applicable",
    requirements: ["APPEND-042"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const patch = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      await expectError(append(session, patch.name, [[{ op: "remove", path: "/missing" }]], { clientSequence: 1 }), { code: Status.FAILED_PRECONDITION, reason: "PATCH_NOT_APPLICABLE", metadata: { index: "0" } }, "remove of a missing path");
      await expectError(append(session, patch.name, [[{ op: "test", path: "", value: { a: 1 } }]], { clientSequence: 1 }), { code: Status.FAILED_PRECONDITION, reason: "PATCH_NOT_APPLICABLE" }, "failed test op");
    },
  }),
  defineCase({
    id: "append.canonical-payload-and-opaque-bytes",
    requirements: ["APPEND-043", "APPEND-044"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const merge = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      // Non-canonical on purpose: whitespace, key order, a number written with an exponent.
      await append(session, merge.name, [Buffer.from('{ "b" : 1e2, "a":[true , null], "c":"\\u00e9" }')], { clientSequence: 1 });
      const [delta] = await listAllDeltas(session, merge.name);
      checkEqual((delta === undefined ? undefined : Buffer.from(delta.payload).toString("utf8")), '{"a":[true,null],"b":100,"c":"é"}', "stored payload (RFC 8785 canonical form)");
      await verifyStreamChain(session, merge.name);
      const opaque = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const bytes = Buffer.from([0x00, 0xff, 0x7b, 0x20, 0x7d, 0x80, 0x00]);
      await append(session, opaque.name, [bytes, Buffer.alloc(0)], { clientSequence: 1 });
      const opaqueDeltas = await listAllDeltas(session, opaque.name);
      checkBytes(opaqueDeltas[0]?.payload, bytes, "opaque payload stored exactly as sent");
      checkBytes(opaqueDeltas[1]?.payload, Buffer.alloc(0), "empty opaque payload stored as sent");
      await verifyStreamChain(session, opaque.name);
    },
  }),
  defineCase({
    id: "append.size-limits",
    requirements: ["APPEND-045", "LIMIT-001"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const opaque = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const max = ctx.limits.maxDeltaBytes;
      check(max >= 65536, `Limits.max_delta_bytes must be at least 65536, got ${max}`);
      await expectError(append(session, opaque.name, [Buffer.alloc(1), Buffer.alloc(max + 1)], { clientSequence: 1 }), { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE", metadata: { limit: String(max), index: "1" } }, "delta one byte over max_delta_bytes");
      const ok = await append(session, opaque.name, [Buffer.alloc(max, 7)], { clientSequence: 1 });
      checkEqual(ok.headVersion, 1n, "a delta of exactly max_delta_bytes");
      const tooMany = Array.from({ length: ctx.limits.maxBatchDeltas + 1 }, () => Buffer.from([1]));
      await expectError(append(session, opaque.name, tooMany, { clientSequence: 2 }), { code: Status.RESOURCE_EXHAUSTED, reason: "BATCH_TOO_LARGE", metadata: { limit: String(ctx.limits.maxBatchDeltas) } }, "batch one delta over max_batch_deltas");
      checkEqual((await listAllDeltas(session, opaque.name)).length, 1, "deltas after refused oversize appends");
    },
  }),
  defineCase({
    id: "append.json-state-bound",
    requirements: ["LIMIT-020", "LIMIT-002"],
    profile: "core",
    // Fills a state of max_snapshot_bytes in full batches: heavy enough to starve cases
    // running beside it.
    exclusive: true,
    timeoutMs: 60_000,
    async run(ctx) {
      const bound = Number(ctx.limits.maxSnapshotBytes);
      if (bound > MAX_FILLED_STATE) {
        ctx.skip(`max_snapshot_bytes is ${bound}; this suite fills states of at most ${MAX_FILLED_STATE} bytes (LIMIT-021 bounds what a small append can build)`);
      }
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.mergePatch });
      const { maxDeltaBytes, maxBatchBytes, maxBatchDeltas } = ctx.limits;
      // Fill the state {"m0":"zz…","m1":…} to exactly `bound` bytes of canonical JSON with
      // merge patches of one member each, every one within max_delta_bytes.
      const full = Math.max(1, maxDeltaBytes - 200);
      const patches: Buffer[] = [];
      let size = 2;
      for (let i = 0; ; i++) {
        const key = `m${i}`;
        const overhead = (i === 0 ? 0 : 1) + key.length + 2 + 1 + 2;
        const remaining = bound - size;
        const length = remaining - overhead - (full + overhead) >= 100 ? full : remaining - overhead;
        check(length >= 0, `cannot fill a state of exactly ${bound} bytes`);
        patches.push(jsonBytes({ [key]: "z".repeat(length) }));
        size += overhead + length;
        if (size === bound) break;
      }
      let sequence = 0;
      for (let start = 0; start < patches.length; ) {
        let bytes = 0;
        let end = start;
        while (end < patches.length && end - start < maxBatchDeltas && bytes + patches[end]!.length <= maxBatchBytes) bytes += patches[end++]!.length;
        await append(session, stream.name, patches.slice(start, end), { clientSequence: ++sequence });
        start = end;
      }
      const head = BigInt(patches.length);
      await expectError(
        append(session, stream.name, [{ m0: null }, { m0: "z".repeat(full), x: 1 }], { clientSequence: sequence + 1 }),
        { code: Status.RESOURCE_EXHAUSTED, reason: "SNAPSHOT_TOO_LARGE", metadata: { limit: String(bound), index: "1" } },
        "a delta making the state one member larger than max_snapshot_bytes",
      );
      const { stream: after } = await verifyStreamChain(session, stream.name);
      checkEqual(after.headVersion, head, "head after the refused append (a state exactly at the bound was accepted)");
      await append(session, stream.name, [{ m0: null }, { small: 1 }], { clientSequence: sequence + 1 });
    },
  }),
  defineCase({
    id: "append.json-copies-bound",
    requirements: ["LIMIT-021"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      const max = ctx.limits.maxDeltaBytes;
      // 1 KB of self-doubling copies: without a bound on copies, 2^40 elements.
      const doubling = [{ op: "add", path: "/a", value: [0] }, ...Array.from({ length: 40 }, () => ({ op: "copy", from: "/a", path: "/a/-" }))];
      // Its copies pass max_delta_bytes while the state is still far below a larger state bound.
      const reason = Number(ctx.limits.maxSnapshotBytes) > 4 * max ? "DELTA_TOO_LARGE" : "SNAPSHOT_TOO_LARGE";
      await expectError(append(session, stream.name, [doubling], { clientSequence: 1 }), { code: Status.RESOURCE_EXHAUSTED, reason }, "a patch of 40 self-doubling copies");
      // A string whose copy inserts just under half of max_delta_bytes.
      await append(session, stream.name, [[{ op: "add", path: "/s", value: "y".repeat(Math.floor(max / 2) - 10) }]], { clientSequence: 1 });
      const copy = (to: string) => [{ op: "copy", from: "/s", path: to }];
      await append(session, stream.name, [copy("/c1")], { clientSequence: 2 });
      await expectError(
        append(session, stream.name, [copy("/c2"), copy("/c3"), copy("/c4")], { clientSequence: 3 }),
        { code: Status.RESOURCE_EXHAUSTED, reason: "DELTA_TOO_LARGE", metadata: { limit: String(max), index: "2" } },
        "an append whose copies insert more than max_delta_bytes",
      );
      const ok = await append(session, stream.name, [copy("/c2"), copy("/c3")], { clientSequence: 3 });
      checkEqual(ok.headVersion, 4n, "head after copies of exactly as many bytes as max_delta_bytes allows");
    },
  }),
];
