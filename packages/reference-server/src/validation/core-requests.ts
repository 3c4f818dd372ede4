import { z } from "zod";
import { DEVICE_ID, MINTED_ID, parseChildName, parseSubjectName, RESOURCE_ID, STREAM_TYPE } from "./names.js";

/**
 * Schemas of the core requests. They check syntax and ranges only — anything that needs the
 * store or the limits (existence, access, sizes) is decided by the services — and they
 * output parsed ids, so services never re-split resource names.
 */

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

const subjectParent = z.string().transform((value, ctx) => {
  const id = parseSubjectName(value);
  if (id === undefined) {
    ctx.addIssue({ code: "custom", message: "must be subjects/{subject}" });
    return z.NEVER;
  }
  return id;
});

const child = (collection: "streams" | "checkpoints" | "handoffs") =>
  z.string().transform((value, ctx) => {
    const parsed = parseChildName(value, collection);
    if (parsed === undefined) {
      ctx.addIssue({ code: "custom", message: `must be subjects/{subject}/${collection}/{id} with a valid id` });
      return z.NEVER;
    }
    return parsed;
  });

/** A uint64 field that must fit a JS number (every real version and sequence does). */
const uint64 = z
  .bigint()
  .refine((v) => v >= 0n && v <= MAX_SAFE, { message: `must be at most ${Number.MAX_SAFE_INTEGER}` })
  .transform((v) => Number(v));

const optionalUint64 = uint64.optional();

const pageSize = z.number().int().min(0, { message: "must not be negative" });

const idOrEmpty = z
  .string()
  .refine((v) => v === "" || RESOURCE_ID.test(v), {
    message: "must be 1-63 characters of [a-z0-9-], starting with a letter or digit and not ending with '-'",
  });

/** CreateStreamRequest. */
export const createStreamSchema = z.object({
  parent: subjectParent,
  streamId: idOrEmpty,
  stream: z.object(
    {
      type: z.string().regex(STREAM_TYPE, { message: "must be at most 128 characters of [A-Za-z0-9.-] with at least one dot" }),
      encoding: z.number().refine((v) => v === 1 || v === 2 || v === 3, { message: "must be a known, set encoding" }),
      conflictPolicy: z.number().refine((v) => v === 1 || v === 2, { message: "must be a known, set conflict policy" }),
    },
    { message: "is required" },
  ),
});

/** Requests that name one stream in `name`. */
export const streamNameSchema = z.object({ name: child("streams") });

/** ListStreamsRequest. */
export const listStreamsSchema = z.object({
  parent: subjectParent,
  pageSize,
  pageToken: z.string(),
  type: z.string().refine((v) => v === "" || STREAM_TYPE.test(v), { message: "must be empty or a stream type" }),
});

/** AppendDeltasRequest. Sizes are checked against the limits by the service. */
export const appendDeltasSchema = z.object({
  stream: child("streams"),
  deltas: z.array(z.object({ payload: z.instanceof(Uint8Array) })).min(1, { message: "must hold at least one delta" }),
  expectedVersion: optionalUint64,
  clientSequence: uint64.refine((v) => v >= 1, { message: "must be at least 1" }),
});

/** ListDeltasRequest. */
export const listDeltasSchema = z.object({
  stream: child("streams"),
  afterVersion: uint64,
  pageSize,
  pageToken: z.string(),
});

/** GetSnapshotRequest. */
export const getSnapshotSchema = z.object({ stream: child("streams"), version: optionalUint64 });

/** The header of an UploadSnapshot transfer. */
export const uploadHeaderSchema = z.object({
  stream: child("streams"),
  version: uint64,
  sizeBytes: uint64,
  snapshotHash: z.instanceof(Uint8Array).refine((v) => v.length === 32, { message: "must be 32 bytes" }),
});

/** CompactStreamRequest. */
export const compactStreamSchema = z.object({ stream: child("streams"), horizonVersion: uint64 });

const resumeSchema = z
  .object({
    activityType: z.string(),
    resource: z.string(),
    position: z.string(),
    fallbackUrl: z.string().refine((v) => v === "" || isHttpsUrl(v), { message: "must be empty or an https URL" }),
    // Keys start with a letter so no runtime drops one (such as `__proto__`) while decoding (CKPT-024).
    attributes: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9._-]{0,63}$/, "keys are 1-64 of [A-Za-z0-9._-], starting with a letter"), z.string()),
  })
  .optional();

/** CreateCheckpointRequest; the stream count limit is checked by the service. */
export const createCheckpointSchema = z
  .object({
    parent: subjectParent,
    checkpointId: idOrEmpty,
    streams: z
      .array(z.object({ stream: child("streams"), version: optionalUint64 }))
      .min(1, { message: "must name at least one stream" }),
    resume: resumeSchema,
  })
  .superRefine((request, ctx) => {
    const seen = new Set<string>();
    for (const selector of request.streams) {
      const key = `${selector.stream.subjectId}/${selector.stream.id}`;
      if (seen.has(key)) {
        ctx.addIssue({ code: "custom", path: ["streams"], message: `names ${key} more than once` });
        return;
      }
      seen.add(key);
    }
  });

/** Requests that name one checkpoint in `name`. */
export const checkpointNameSchema = z.object({ name: child("checkpoints") });

/** ListCheckpointsRequest. */
export const listCheckpointsSchema = z.object({ parent: subjectParent, pageSize, pageToken: z.string() });

/** OfferHandoffRequest. */
export const offerHandoffSchema = z
  .object({
    parent: subjectParent,
    checkpoint: child("checkpoints"),
    targetDevice: z.string().transform((value, ctx) => {
      if (value === "") return undefined;
      const parsed = parseChildName(value, "devices");
      if (parsed === undefined || !DEVICE_ID.test(parsed.id)) {
        ctx.addIssue({ code: "custom", message: "must be empty or subjects/{subject}/devices/{device}" });
        return z.NEVER;
      }
      return parsed;
    }),
    ttlSeconds: z.number().int().min(0).max(3600, { message: "must be at most 3600" }),
  });

/** Requests that name one handoff in `name`. */
export const handoffNameSchema = z.object({
  name: child("handoffs").refine((v) => MINTED_ID.test(v.id), { message: "must name a handoff" }),
});

/** SubscribeRequest; the cursor is parsed by the subscription service. */
export const subscribeSchema = z.object({
  parent: subjectParent,
  cursor: z.string().max(256, { message: "is too long" }),
  heartbeatSeconds: z.number().int().min(0).max(300, { message: "must be at most 300" }),
});

function isHttpsUrl(value: string): boolean {
  try {
    return new URL(value).protocol === "https:";
  } catch {
    return false;
  }
}
