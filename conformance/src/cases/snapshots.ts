import { randomBytes } from "node:crypto";
import type { continuity } from "@continuity/sdk/gen";
import type { Session } from "../harness/context.js";
import { defineCase } from "../harness/define-case.js";
import { checkBytes, checkEqual, checkError, expectError, fail, Status } from "../harness/expect.js";
import { snapshotHash } from "../harness/hashing.js";
import { append, createStream, downloadSnapshot, ENCODING } from "../harness/streams.js";
import { openSubscription } from "../harness/subscription.js";

type UploadMessage = continuity.v1.UploadSnapshotRequest;

function headerFor(stream: continuity.v1.Stream, version: bigint, headHash: Uint8Array, state: Buffer): continuity.v1.SnapshotHeader {
  return {
    stream: stream.name,
    streamUid: stream.uid,
    version,
    headHash: Buffer.from(headHash),
    encoding: ENCODING.opaque,
    sizeBytes: BigInt(state.length),
    snapshotHash: Buffer.from(snapshotHash({ streamUid: stream.uid, version, headHash, encoding: ENCODING.opaque, state })),
  };
}

async function upload(session: Session, messages: readonly UploadMessage[]) {
  return session.clients.streams.uploadSnapshot((async function* () {
    yield* messages;
  })());
}

const header = (value: continuity.v1.SnapshotHeader): UploadMessage => ({ part: { $case: "header", value } });
const data = (value: Buffer): UploadMessage => ({ part: { $case: "data", value } });

/** Snapshot uploads that must be refused or replace, and opaque compaction. */
export const SNAPSHOT_CASES = [
  defineCase({
    id: "snapshot.upload-framing-and-size-refused",
    requirements: ["SNAP-011", "SNAP-013"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const { headHash } = await append(session, stream.name, [Buffer.from("a")], { clientSequence: 1 });
      const state = Buffer.from("state bytes");
      const good = headerFor(stream, 1n, headHash, state);
      const invalid = { code: Status.INVALID_ARGUMENT, reason: "INVALID_FIELD" } as const;
      await expectError(upload(session, [data(state), header(good)]), invalid, "an upload that starts with data");
      await expectError(upload(session, [header(good), header(good), data(state)]), invalid, "an upload with two headers");
      const big = randomBytes(ctx.limits.maxChunkBytes + 1);
      await expectError(upload(session, [header(headerFor(stream, 1n, headHash, big)), data(big)]), invalid, "a chunk longer than max_chunk_bytes");
      const tooLarge = { ...good, sizeBytes: ctx.limits.maxSnapshotBytes + 1n };
      await expectError(upload(session, [header(tooLarge), data(state)]), { code: Status.RESOURCE_EXHAUSTED, reason: "SNAPSHOT_TOO_LARGE", metadata: { limit: String(ctx.limits.maxSnapshotBytes) } }, "size_bytes above max_snapshot_bytes");
      const current = await downloadSnapshot(session, stream.name);
      checkEqual([current.header.version, current.state.length], [0n, 0], "no refused upload was stored");
    },
  }),
  defineCase({
    id: "snapshot.upload-replaces-and-cancel-stores-nothing",
    requirements: ["SNAP-016", "SNAP-017", "SNAP-007"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const { headHash } = await append(session, stream.name, [Buffer.from("a"), Buffer.from("b")], { clientSequence: 1 });
      const first = Buffer.from("first state");
      const second = Buffer.from("second, replacing state");
      await upload(session, [header(headerFor(stream, 2n, headHash, first)), data(first)]);
      await upload(session, [header(headerFor(stream, 2n, headHash, second)), data(second)]);
      checkBytes((await downloadSnapshot(session, stream.name)).state, second, "a second upload at a version replaces the first");
      // An upload that stops half way must leave the stored snapshot alone.
      const third = randomBytes(4096);
      const controller = new AbortController();
      const aborted = session.clients.streams.uploadSnapshot((async function* () {
        yield header(headerFor(stream, 2n, headHash, third));
        yield data(third.subarray(0, 1000));
        await new Promise((resolve) => setTimeout(resolve, 100));
        controller.abort();
      })(), { signal: controller.signal });
      await aborted.then(
        () => fail("a cancelled upload must not succeed"),
        () => undefined,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      checkBytes((await downloadSnapshot(session, stream.name)).state, second, "the snapshot after a cancelled upload");
      const { headHash: head3 } = await append(session, stream.name, [Buffer.from("c")], { clientSequence: 2 });
      checkEqual((await downloadSnapshot(session, stream.name)).header.version, 2n, "GetSnapshot of an opaque stream serves the newest upload at or below the head");
      checkEqual(head3.length, 32, "head hash length");
    },
  }),
  defineCase({
    id: "compact.opaque-needs-snapshot-and-is-published",
    requirements: ["COMPACT-004", "COMPACT-006", "SUB-013", "STREAM-010"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session, { encoding: ENCODING.opaque });
      const { receipts } = await append(session, stream.name, [Buffer.from("a"), Buffer.from("b"), Buffer.from("c")], { clientSequence: 1 });
      await expectError(session.clients.streams.compactStream({ stream: stream.name, horizonVersion: 2n }), { code: Status.NOT_FOUND, reason: "SNAPSHOT_NOT_FOUND" }, "compacting an opaque stream without a snapshot there");
      const state = Buffer.from("state at 2");
      await upload(session, [header(headerFor(stream, 2n, receipts[1]!.hash, state)), data(state)]);
      const sub = openSubscription(session, "", ctx.signal);
      try {
        await sub.expectEvent("ready");
        const { stream: compacted } = await session.clients.streams.compactStream({ stream: stream.name, horizonVersion: 2n });
        const event = await sub.expectEvent("streamCompacted");
        checkEqual([event.event.value.stream?.horizonVersion, event.event.value.stream?.name], [2n, stream.name], "StreamCompacted carries the new horizon");
        const { stream: read } = await session.clients.streams.getStream({ name: stream.name });
        checkEqual([read?.horizonVersion, read?.headVersion], [2n, 3n], "GetStream after compaction");
        checkBytes(read?.horizonHash, compacted!.horizonHash, "GetStream.horizon_hash after compaction");
        checkBytes((await downloadSnapshot(session, stream.name, 2n)).state, state, "the snapshot at the horizon survives compaction");
      } finally {
        sub.close();
      }
    },
  }),
  defineCase({
    id: "subscription.slow-reader-never-blocks-writers",
    requirements: ["SUB-030", "SUB-031", "SUB-011"],
    profile: "core",
    // 1500 appends from 6 writers at once (each one after another on its own stream): a few
    // seconds on an idle machine, up to a minute on a loaded one.
    timeoutMs: 90_000,
    async run(ctx) {
      const session = await ctx.session();
      const WRITERS = 6;
      const PER_WRITER = 250;
      const streams = await Promise.all(Array.from({ length: WRITERS }, () => createStream(ctx, session)));
      const controller = new AbortController();
      const iterator = session.clients.subscriptions.subscribe({ parent: session.subject, cursor: "", heartbeatSeconds: 0 }, { signal: AbortSignal.any([controller.signal, ctx.signal]) })[Symbol.asyncIterator]();
      // Versions of each stream must arrive in order, each once, across a cut and a resume.
      const next = new Map(streams.map((stream) => [stream.name, 1n]));
      let seen = 0;
      const take = (deltas: readonly { stream: string; version: bigint }[], when: string): void => {
        for (const delta of deltas) {
          const expected = next.get(delta.stream);
          if (expected === undefined) fail(`${when}: an event of a stream this case did not write, ${delta.stream}`);
          if (delta.version !== expected) fail(`${when}: events of ${delta.stream} jumped from version ${expected} to ${delta.version}`);
          next.set(delta.stream, expected + 1n);
          seen += 1;
        }
      };
      const total = WRITERS * PER_WRITER;
      try {
        const ready = await iterator.next();
        if (ready.done || ready.value.event?.$case !== "ready") fail("the subscription must start with ready");
        // Nobody reads now. Writes must go on regardless (SUB-030): more events than a server
        // typically buffers per subscriber, each one large enough to fill transport windows.
        const padding = "p".repeat(512);
        await Promise.all(streams.map(async (stream) => {
          for (let seq = 1; seq <= PER_WRITER; seq++) await append(session, stream.name, [{ n: seq, padding }], { clientSequence: seq });
        }));
        let lastCursor = ready.value.cursor;
        let ended: unknown;
        try {
          while (seen < total) {
            const message = await iterator.next();
            if (message.done) break;
            if (message.value.event?.$case === "deltasAppended") take(message.value.event.value.deltas, "reading behind");
            lastCursor = message.value.cursor;
          }
        } catch (error) {
          ended = error;
        }
        if (ended !== undefined) {
          // A server may cut a reader that fell behind, but only with SUBSCRIBER_TOO_SLOW, and
          // resuming from the last cursor received must continue without a gap (SUB-031).
          checkError(ended, { code: Status.RESOURCE_EXHAUSTED, reason: "SUBSCRIBER_TOO_SLOW" }, "the end of a subscription that fell behind");
          ctx.note(`the server ended the slow subscription after ${seen} of ${total} events; resuming`);
          const resumed = openSubscription(session, lastCursor, ctx.signal);
          try {
            const first = await resumed.nextEvent();
            if (first.event?.$case === "reset") {
              ctx.note("resume answered reset; the client re-bases");
            } else {
              checkEqual(first.event?.$case, "ready", "the first message after resuming");
              while (seen < total) take((await resumed.expectEvent("deltasAppended")).event.value.deltas, "after resuming");
            }
          } finally {
            resumed.close();
          }
        } else {
          checkEqual(seen, total, "events delivered to the reader that fell behind");
        }
      } finally {
        controller.abort();
        await iterator.return?.();
      }
    },
  }),
  defineCase({
    id: "subscription.cancel-leaves-others-running",
    requirements: ["SUB-045", "GEN-013"],
    profile: "core",
    async run(ctx) {
      const session = await ctx.session();
      const stream = await createStream(ctx, session);
      const kept = openSubscription(session, "", ctx.signal);
      const cancelled = openSubscription(session, "", ctx.signal);
      try {
        await kept.expectEvent("ready");
        await cancelled.expectEvent("ready");
        cancelled.close();
        for (let seq = 1; seq <= 3; seq++) {
          await append(session, stream.name, [{ n: seq }], { clientSequence: seq });
          const event = await kept.expectEvent("deltasAppended");
          const version = event.event.value.deltas[0]!.version;
          const { stream: read } = await session.clients.streams.getStream({ name: stream.name });
          if ((read?.headVersion ?? 0n) < version) fail(`an event for version ${version} arrived before a read showed it`);
        }
      } finally {
        kept.close();
        cancelled.close();
      }
    },
  }),
];
