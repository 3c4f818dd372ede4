import { createHash } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { v1 } from "../harness/clients.js";
import { defineCase } from "../harness/define-case.js";
import { check, checkBytes, checkEqual, checkError, expectError, fail, Status } from "../harness/expect.js";
import { checkHealthServing, rawUnaryCall, wire } from "../harness/raw-call.js";
import { append, appendRequest, createStream, ENCODING, listAllDeltas, verifyStreamChain } from "../harness/streams.js";
import { openSubscription } from "../harness/subscription.js";

/** Deterministic pseudo-random bytes, so a failing input can be reproduced from the report. */
function noise(seed: string, length: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; out.length * 32 < length; i++) out.push(createHash("sha256").update(`${seed}/${i}`).digest());
  return Buffer.concat(out).subarray(0, length);
}

const METHODS = [
  "/continuity.v1.TokenService/ExchangeToken",
  "/continuity.v1.StreamService/CreateStream",
  "/continuity.v1.StreamService/AppendDeltas",
  "/continuity.v1.StreamService/ListDeltas",
  "/continuity.v1.CheckpointService/CreateCheckpoint",
  "/continuity.v1.SubjectService/RedeemLinkCode",
  "/continuity.v1.ServerInfoService/GetServerInfo",
];

/** Malformed input, oversize messages, unknown fields and durability. */
export const ROBUSTNESS_CASES = [
  defineCase({
    id: "robustness.random-bytes-keep-server-serving",
    requirements: ["GEN-012", "ERR-005"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      for (const method of METHODS) {
        for (let i = 0; i < 6; i++) {
          const body = noise(`${method}/${i}`, 1 + ((i * 97) % 700));
          const outcome = await rawUnaryCall(ctx, method, body, session.token);
          if (outcome.code === grpc.status.UNAVAILABLE) fail(`${method} with ${body.length} random bytes (seed ${method}/${i}) left the server unavailable: ${outcome.details}`);
        }
        await checkHealthServing(ctx);
      }
      await ctx.clients().serverInfo.getServerInfo({});
      checkEqual((await listAllDeltas(session, stream.name)).length, 0, "random bytes appended nothing to an existing stream");
    },
  }),
  defineCase({
    id: "robustness.wrong-wire-types-refused",
    requirements: ["GEN-012", "VER-011", "VER-010"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      // stream (field 1, a string) sent as a varint; client_sequence (field 4, a varint) sent as bytes.
      const wrongTypes = Buffer.concat([wire.varintField(1, 5), wire.bytesField(2, wire.bytesField(1, '{"a":1}')), wire.bytesField(4, "1")]);
      const outcome = await rawUnaryCall(ctx, "/continuity.v1.StreamService/AppendDeltas", wrongTypes, session.token);
      check(outcome.code !== grpc.status.OK, "AppendDeltas with wrong wire types must not succeed");
      await checkHealthServing(ctx);
      // Unknown fields are ignored: a valid request plus field 99 behaves as without it.
      const request = v1.GetStreamRequest.encode({ name: stream.name }).finish();
      const withUnknown = Buffer.concat([Buffer.from(request), wire.varintField(99, 12345), wire.bytesField(98, "future")]);
      const ok = await rawUnaryCall(ctx, "/continuity.v1.StreamService/GetStream", withUnknown, session.token);
      checkEqual(grpc.status[ok.code], "OK", "GetStream with unknown fields");
      checkEqual(v1.GetStreamResponse.decode(ok.response!).stream?.uid, stream.uid, "GetStream with unknown fields returns the stream");
      // An unknown enum number must be refused, never read as a default.
      const unknownEnum = Buffer.concat([wire.bytesField(1, session.subject), wire.bytesField(2, ctx.uniqueId("e")), wire.bytesField(3, Buffer.concat([wire.bytesField(3, "org.example.enum"), wire.varintField(4, 77), wire.varintField(5, 2)]))]);
      const refused = await rawUnaryCall(ctx, "/continuity.v1.StreamService/CreateStream", unknownEnum, session.token);
      checkEqual(grpc.status[refused.code], "INVALID_ARGUMENT", "CreateStream with encoding 77");
      checkEqual((await listAllDeltas(session, stream.name)).length, 0, "the malformed append stored nothing");
    },
  }),
  defineCase({
    id: "limit.batch-bytes-boundary",
    requirements: ["LIMIT-011", "LIMIT-002", "LIMIT-010", "APPEND-045"],
    profile: "core",
    // Appending max_batch_bytes beside the heavy cases can outlast the 10 s call bound on a
    // loaded machine.
    exclusive: true,
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const { maxBatchBytes, maxDeltaBytes, maxBatchDeltas } = ctx.limits;
      const count = Math.ceil(maxBatchBytes / maxDeltaBytes);
      check(count <= maxBatchDeltas, "suite self-check: batch fits max_batch_deltas");
      const sizes = Array.from({ length: count }, (_, i) => (i < count - 1 ? maxDeltaBytes : maxBatchBytes - maxDeltaBytes * (count - 1)));
      const atLimit = await append(session, stream.name, sizes.map((size, i) => Buffer.alloc(size, i)), { clientSequence: 1 });
      checkEqual(atLimit.receipts.length, count, `a batch of exactly max_batch_bytes (${maxBatchBytes}) in ${count} deltas`);
      const over = sizes.map((size, i) => Buffer.alloc(i === count - 1 ? size + 1 : size, i));
      if (over[count - 1]!.length <= maxDeltaBytes) {
        await expectError(append(session, stream.name, over, { clientSequence: 2 }), { code: Status.RESOURCE_EXHAUSTED, reason: "BATCH_TOO_LARGE", metadata: { limit: String(maxBatchBytes) } }, "a batch one byte over max_batch_bytes");
      } else {
        ctx.note("max_batch_bytes is a multiple of max_delta_bytes; one-byte-over checked with an extra delta");
        await expectError(append(session, stream.name, [...sizes.map((size) => Buffer.alloc(size)), Buffer.alloc(1)], { clientSequence: 2 }), { code: Status.RESOURCE_EXHAUSTED, reason: "BATCH_TOO_LARGE" }, "a batch one byte over max_batch_bytes");
      }
      checkEqual((await listAllDeltas(session, stream.name)).length, count, "nothing of the refused batch was stored");

    },
  }),
  defineCase({
    id: "robustness.oversize-message-refused",
    requirements: ["LIMIT-011", "GEN-012"],
    profile: "core",
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const huge = Buffer.concat([wire.bytesField(1, stream.name), wire.bytesField(2, wire.bytesField(1, Buffer.alloc(ctx.limits.maxBatchBytes * 2 + (1 << 20)))), wire.varintField(4, 1)]);
      const outcome = await rawUnaryCall(ctx, "/continuity.v1.StreamService/AppendDeltas", huge, session.token, 30_000);
      check(outcome.code !== grpc.status.OK, `a ${huge.length}-byte AppendDeltas message must be refused`);
      await checkHealthServing(ctx);
      checkEqual((await listAllDeltas(session, stream.name)).length, 0, "the oversize message stored nothing");
    },
  }),
  defineCase({
    id: "durability.acknowledged-writes-survive-kill",
    requirements: ["GEN-010", "APPEND-016"],
    profile: "core",
    needs: ["restart"],
    exclusive: true,
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.jsonPatch });
      await append(session, stream.name, [[{ op: "add", path: "/a", value: 1 }]], { clientSequence: 1 });
      const lastRequest = appendRequest(stream.name, [[{ op: "add", path: "/b", value: 2 }], [{ op: "add", path: "/c", value: 3 }]], { clientSequence: 2 });
      const last = await session.clients.streams.appendDeltas(lastRequest);
      const { checkpoint } = await session.clients.checkpoints.createCheckpoint({ parent: session.subject, checkpointId: "", streams: [{ stream: stream.name }], resume: undefined });
      // No graceful shutdown: acknowledged means durable.
      await ctx.restartServer({ wipeData: false, kill: true });
      const after = { ...session, clients: ctx.clients(session.token) };
      const { stream: survived } = await verifyStreamChain(after, stream.name);
      checkEqual(survived.headVersion, 3n, "head after a kill");
      checkBytes(survived.headHash, last.headHash, "head hash after a kill");
      const { checkpoint: kept } = await after.clients.checkpoints.getCheckpoint({ name: checkpoint!.name });
      checkEqual(kept, checkpoint, "checkpoint after a kill");
      const replay = await after.clients.streams.appendDeltas(lastRequest);
      checkEqual([replay.replayed, replay.headVersion], [true, 3n], "a retry after the crash replays the stored outcome");
    },
  }),
  defineCase({
    id: "robustness.shutdown-ends-subscriptions",
    requirements: ["GEN-020"],
    profile: "core",
    needs: ["restart"],
    exclusive: true,
    timeoutMs: 60_000,
    async run(ctx) {
      const session = await ctx.session();
      const sub = openSubscription(session, "", ctx.signal);
      try {
        await sub.expectEvent("ready");
        const restarted = ctx.restartServer({ wipeData: false, kill: false });
        const ended = await sub.ended(15_000);
        await restarted;
        if (ended === undefined) fail("a subscription must end with a status when the server shuts down");
        checkError(ended, { code: Status.UNAVAILABLE, reason: "SHUTTING_DOWN" }, "an open subscription when the server shuts down");
      } finally {
        sub.close();
      }
    },
  }),
  defineCase({
    id: "security.access-token-lifetime-bounded",
    requirements: ["SEC-003"],
    profile: "core",
    async run(ctx) {
      check(ctx.limits.accessTokenSeconds <= 3600, `access_token_seconds is ${ctx.limits.accessTokenSeconds}; keep it at 3600 or less`);
      const session = await ctx.session();
      check(session.exchange.expiresIn <= 3600, `an access token lives ${session.exchange.expiresIn} s`);
    },
  }),
];
