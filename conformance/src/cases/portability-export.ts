/**
 * An export of a subject with more streams and more records of one kind than an exporter
 * naturally reads in one page (the reference server reads 200 at a time): every one of them
 * is in the bundle, once (PORT-002, PORT-003).
 */
import { defineCase } from "../harness/define-case.js";
import { checkEqual, fail } from "../harness/expect.js";
import { richErrorOf } from "../harness/raw-call.js";
import { createStream } from "../harness/streams.js";
import { decodePart, exportRaw } from "../portability/bundle.js";

/** More than one page of the reference server's reads (200), so that a second page must follow. */
const MANY = 201;

/** Runs `make(i)` for i in [0, n), a few at a time. */
async function inBatches<T>(n: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let start = 0; start < n; start += 25) {
    out.push(...(await Promise.all(Array.from({ length: Math.min(25, n - start) }, (_, k) => make(start + k)))));
  }
  return out;
}

export const PORTABILITY_EXPORT_CASES = [
  defineCase({
    id: "portability-export.large-subject-exported-whole",
    requirements: ["PORT-002", "PORT-003", "PORT-004"],
    profile: "portability",
    timeoutMs: 60_000,
    async run(ctx) {
      const owner = await ctx.session();
      const streamCount = Math.min(MANY, ctx.limits.maxStreamsPerSubject === 0 ? MANY : ctx.limits.maxStreamsPerSubject);
      if (streamCount < MANY) ctx.note(`the server holds at most ${streamCount} streams per subject; the bundle is checked with that many`);
      const streams = await inBatches(streamCount, (i) => createStream(ctx, owner, { streamId: `many-${String(i).padStart(3, "0")}` }));
      const checkpointIds = await inBatches(MANY, async (i) => {
        const id = `many-${String(i).padStart(3, "0")}`;
        await owner.clients.checkpoints.createCheckpoint({ parent: owner.subject, checkpointId: id, streams: [{ stream: streams[i % streams.length]!.name }], resume: { activityType: "org.example.many", resource: "", position: "", fallbackUrl: "", attributes: {} } });
        return id;
      });
      let parts;
      try {
        parts = (await exportRaw(ctx, owner.token, owner.subject, 30_000)).map(decodePart);
      } catch (error) {
        throw richErrorOf("/continuity.v1.PortabilityService/ExportSubject", error as never);
      }
      const manifest = parts[0]?.decoded.part;
      if (manifest?.$case !== "manifest") return fail("an export starts with its manifest");
      const uids = streams.map((s) => s.uid).sort();
      checkEqual(manifest.value.streams.length, streamCount, `the number of stream summaries in the manifest of a subject with ${streamCount} streams`);
      checkEqual([...manifest.value.streams.map((s) => s.streamUid)].sort(), uids, `the manifest of a subject with ${streamCount} streams holds one summary per stream`);
      const records = parts.slice(1, -1).map((p) => (p.decoded.part?.$case === "record" ? p.decoded.part.value.record : undefined));
      const streamRecords = records.flatMap((r) => (r?.$case === "stream" ? [r.value.uid] : []));
      checkEqual(streamRecords.length, streamCount, `the number of stream records of a subject with ${streamCount} streams`);
      checkEqual(streamRecords, uids, `the bundle holds the stream record of each of the ${streamCount} streams, once, ordered by uid`);
      const checkpointNames = records.flatMap((r) => (r?.$case === "checkpoint" ? [r.value.name.slice(r.value.name.lastIndexOf("/") + 1)] : []));
      checkEqual(checkpointNames.length, MANY, `the number of checkpoint records of a subject with ${MANY} checkpoints`);
      checkEqual(checkpointNames, [...checkpointIds].sort(), `the bundle holds each of the subject's ${MANY} checkpoints, once, ordered by name`);
      const trailer = parts.at(-1)?.decoded.part;
      if (trailer?.$case !== "trailer") return fail("an export ends with its trailer");
      checkEqual(trailer.value.recordCount, BigInt(records.length), "the trailer's record_count");
    },
  }),
];
