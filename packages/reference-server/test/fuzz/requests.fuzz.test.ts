// Property tests of the server's request decoding and validation (src/validation): the path
// every request takes from the wire (the generated protobuf decoder) through its zod schema.
// Whatever the bytes, a request either decodes and then validates, or is refused with
// INVALID_ARGUMENT / INVALID_FIELD naming real fields of that request, never another error;
// and what validates names exactly the resources the request named.
import fc from "fast-check";
import { ServerError, Status } from "nice-grpc-common";
import { BadRequest, ErrorInfo } from "nice-grpc-error-details";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { continuity } from "@continuity/sdk/gen";
import * as schemas from "../../src/validation/core-requests.js";
import { DEVICE_ID, MINTED_ID, parseChildName, parseSubjectName, RESOURCE_ID, type Collection } from "../../src/validation/names.js";
import { parseRequest } from "../../src/validation/validate.js";
import { fuzzParameters, fuzzTimeoutMs } from "./fuzz-settings.js";

const v1 = continuity.v1;

interface MessageType {
  decode(input: Uint8Array): unknown;
  encode(message: never): { finish(): Uint8Array };
  fromPartial(object: never): unknown;
}

/** Each request message and the schema its handler parses it with. */
const REQUESTS: readonly (readonly [string, MessageType, z.ZodType])[] = [
  ["CreateStream", v1.CreateStreamRequest, schemas.createStreamSchema],
  ["GetStream", v1.GetStreamRequest, schemas.streamNameSchema],
  ["DeleteStream", v1.DeleteStreamRequest, schemas.streamNameSchema],
  ["ListStreams", v1.ListStreamsRequest, schemas.listStreamsSchema],
  ["AppendDeltas", v1.AppendDeltasRequest, schemas.appendDeltasSchema],
  ["ListDeltas", v1.ListDeltasRequest, schemas.listDeltasSchema],
  ["GetSnapshot", v1.GetSnapshotRequest, schemas.getSnapshotSchema],
  ["CompactStream", v1.CompactStreamRequest, schemas.compactStreamSchema],
  ["CreateCheckpoint", v1.CreateCheckpointRequest, schemas.createCheckpointSchema],
  ["GetCheckpoint", v1.GetCheckpointRequest, schemas.checkpointNameSchema],
  ["ListCheckpoints", v1.ListCheckpointsRequest, schemas.listCheckpointsSchema],
  ["OfferHandoff", v1.OfferHandoffRequest, schemas.offerHandoffSchema],
  ["GetHandoff", v1.GetHandoffRequest, schemas.handoffNameSchema],
  ["AcceptHandoff", v1.AcceptHandoffRequest, schemas.handoffNameSchema],
  ["Subscribe", v1.SubscribeRequest, schemas.subscribeSchema],
];

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * Decodes and validates like the server does, and checks the refusal when there is one:
 * INVALID_ARGUMENT with ErrorInfo INVALID_FIELD and a BadRequest whose every field path
 * starts at a field of the message.
 */
function decodeAndValidate(type: MessageType, schema: z.ZodType, bytes: Uint8Array): "invalid-wire" | "refused" | { ok: unknown; request: unknown } {
  let request: unknown;
  try {
    request = type.decode(bytes);
  } catch {
    // grpc-js answers a request it cannot deserialize itself, before any handler.
    return "invalid-wire";
  }
  try {
    return { ok: parseRequest(schema, request), request };
  } catch (error) {
    expect(error).toBeInstanceOf(ServerError);
    expect((error as ServerError).code).toBe(Status.INVALID_ARGUMENT);
    const details = (error as { extra?: unknown[] }).extra ?? [];
    const info = details.find((d): d is ErrorInfo => (d as { $type?: string }).$type === ErrorInfo.$type);
    const badRequest = details.find((d): d is BadRequest => (d as { $type?: string }).$type === BadRequest.$type);
    expect(info?.reason).toBe("INVALID_FIELD");
    expect(badRequest?.fieldViolations.length ?? 0).toBeGreaterThan(0);
    const fields = new Set(Object.keys(type.fromPartial({} as never) as object).map(snake));
    for (const violation of badRequest!.fieldViolations) {
      expect(fields, `violation field ${violation.field}`).toContain(violation.field.split(/[.[]/)[0]);
    }
    return "refused";
  }
}

// A few ids recur, so that names in one request often share their subject, as real ones do.
const ID = fc.oneof(fc.constantFrom("a", "s1", "0"), fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/));
/** Names as clients send them: mostly right, some nearly right, some wrong. */
const NAME = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(ID, fc.constantFrom("streams", "checkpoints", "handoffs", "devices"), ID).map(([s, c, id]) => `subjects/${s}/${c}/${id}`) },
  { weight: 3, arbitrary: ID.map((s) => `subjects/${s}`) },
  fc.tuple(ID, fc.constantFrom("grants", "Streams", "", "streams/x"), ID).map(([s, c, id]) => `subjects/${s}/${c}/${id}`),
  fc.tuple(ID, ID).map(([s, id]) => `subjects/${s}/streams/${id}-`),
  fc.constantFrom("", "subjects/", "subjects//streams/x", "subjects/a/streams/", "/subjects/a", "subjects/a/streams/b/extra", "subjects/A/streams/b", `subjects/${"a".repeat(65)}`),
  fc.string({ unit: "binary", maxLength: 40 }),
);
const UINT64 = fc.oneof(fc.constantFrom(0n, 1n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
const INT32 = fc.oneof(fc.constantFrom(0, 1, -1, 300, 301, 3600, 3601, 2 ** 31 - 1, -(2 ** 31)), fc.integer());
const UINT32 = fc.oneof(fc.constantFrom(0, 1, 300, 301, 3600, 3601, 2 ** 32 - 1), fc.nat());

/** Structured requests with every field drawn from right, edge and wrong values. */
const MESSAGE_FIELDS: Record<string, fc.Arbitrary<Record<string, unknown>>> = {
  CreateStream: fc.record({ parent: NAME, streamId: fc.oneof(ID, NAME), stream: fc.option(fc.record({ type: fc.oneof(fc.constantFrom("org.example.notes", "x", "a.b", ".", "a".repeat(129) + ".b"), fc.string()), encoding: INT32, conflictPolicy: INT32 }), { nil: undefined }) }),
  GetStream: fc.record({ name: NAME }),
  ListStreams: fc.record({ parent: NAME, pageSize: INT32, pageToken: fc.string(), type: fc.string({ maxLength: 10 }) }),
  AppendDeltas: fc.record({ stream: NAME, deltas: fc.array(fc.record({ payload: fc.uint8Array({ maxLength: 8 }) }), { maxLength: 3 }), expectedVersion: fc.option(UINT64, { nil: undefined }), clientSequence: UINT64 }),
  ListDeltas: fc.record({ stream: NAME, afterVersion: UINT64, pageSize: INT32, pageToken: fc.string() }),
  CreateCheckpoint: fc.record({ parent: NAME, checkpointId: fc.oneof(ID, fc.string()), streams: fc.array(fc.record({ stream: NAME, version: fc.option(UINT64, { nil: undefined }) }), { maxLength: 3 }), resume: fc.option(fc.record({ activityType: fc.string(), resource: fc.string(), position: fc.string(), fallbackUrl: fc.constantFrom("", "https://example.org/x", "http://example.org", "https://", "not a url"), attributes: fc.dictionary(fc.oneof(fc.string({ maxLength: 5 }), fc.constantFrom("__proto__", "constructor", "a", "A.b")), fc.string({ maxLength: 5 }), { maxKeys: 3 }) }), { nil: undefined }) }),
  OfferHandoff: fc.oneof(
    fc.record({ parent: NAME, checkpoint: NAME, targetDevice: fc.oneof(fc.constant(""), NAME), ttlSeconds: UINT32 }),
    // The checkpoint and device of the parent subject, as a real offer names them.
    fc.tuple(ID, ID, fc.oneof(fc.constant(""), ID), fc.nat(4000)).map(([subject, checkpoint, device, ttlSeconds]) => ({
      parent: `subjects/${subject}`,
      checkpoint: `subjects/${subject}/checkpoints/${checkpoint}`,
      targetDevice: device === "" ? "" : `subjects/${subject}/devices/${device}`,
      ttlSeconds,
    })),
  ),
  Subscribe: fc.record({ parent: NAME, cursor: fc.string({ maxLength: 300 }), heartbeatSeconds: UINT32 }),
};

describe("request decoding and validation (fuzzed)", () => {
  it.each(REQUESTS)("%s: any bytes are decoded and validated, or refused with INVALID_FIELD on its own fields", (_name, type, schema) => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 96 }),
      // Valid framing of random fields: tags 1-8 of every wire type, so the decoder gets far.
      fc.array(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.constantFrom(0, 1, 2, 5), fc.uint8Array({ maxLength: 12 })), { maxLength: 6 }).map((fields) => {
        const out: number[] = [];
        for (const [field, wireType, payload] of fields) {
          out.push((field << 3) | wireType);
          if (wireType === 0) out.push(...payload.slice(0, 9).map((b, i, all) => (i < all.length - 1 ? b | 0x80 : b & 0x7f)), ...(payload.length === 0 ? [0] : []));
          else if (wireType === 1) out.push(...Array.from({ length: 8 }, (_, i) => payload[i] ?? 0));
          else if (wireType === 5) out.push(...Array.from({ length: 4 }, (_, i) => payload[i] ?? 0));
          else out.push(payload.length, ...payload);
        }
        return Uint8Array.from(out);
      }),
    );
    fc.assert(
      fc.property(bytes, (input) => {
        decodeAndValidate(type, schema, input);
      }),
      fuzzParameters(0.5),
    );
  }, fuzzTimeoutMs(0.5));

  it.each(Object.keys(MESSAGE_FIELDS))("%s: structured requests validate exactly when their names and numbers are right", (name) => {
    const [, type, schema] = REQUESTS.find(([n]) => n === name)!;
    fc.assert(
      fc.property(MESSAGE_FIELDS[name]!, (fields) => {
        const bytes = type.encode(type.fromPartial(fields as never) as never).finish();
        const outcome = decodeAndValidate(type, schema, bytes);
        expect(outcome).not.toBe("invalid-wire");
        if (typeof outcome === "string") return;
        // Whatever validated names what the request named, with ids of the right syntax.
        const sent = new Set(stringsIn(fields));
        const ok = outcome.ok as Record<string, unknown>;
        if (typeof ok["parent"] === "string") expect(fields["parent"]).toBe(`subjects/${ok["parent"]}`);
        for (const parsed of parsedNamesIn(ok)) {
          expect(MINTED_ID.test(parsed.subjectId)).toBe(true);
          expect(COLLECTIONS.some((c) => sent.has(`subjects/${parsed.subjectId}/${c}/${parsed.id}`)), JSON.stringify(parsed)).toBe(true);
        }
      }),
      fuzzParameters(),
    );
  }, fuzzTimeoutMs());
});

const COLLECTIONS: readonly Collection[] = ["streams", "checkpoints", "handoffs", "devices"];

function* stringsIn(value: unknown): Generator<string> {
  if (typeof value === "string") yield value;
  else if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) for (const item of Object.values(value)) yield* stringsIn(item);
}

function* parsedNamesIn(value: unknown): Generator<{ subjectId: string; id: string }> {
  if (value === null || typeof value !== "object" || value instanceof Uint8Array) return;
  if ("subjectId" in value && "id" in value) yield value as { subjectId: string; id: string };
  else for (const item of Object.values(value)) yield* parsedNamesIn(item);
}

describe("resource names (fuzzed)", () => {
  it("a parsed name is exactly the name rebuilt from its ids, and ids have their collection's syntax", () => {
    fc.assert(
      fc.property(NAME, fc.constantFrom(...COLLECTIONS), (name, collection) => {
        const subject = parseSubjectName(name);
        if (subject !== undefined) expect(`subjects/${subject}`).toBe(name);
        const child = parseChildName(name, collection);
        if (child === undefined) return;
        expect(`subjects/${child.subjectId}/${collection}/${child.id}`).toBe(name);
        const syntax = collection === "devices" ? DEVICE_ID : collection === "handoffs" ? MINTED_ID : RESOURCE_ID;
        expect(syntax.test(child.id)).toBe(true);
      }),
      fuzzParameters(2),
    );
  }, fuzzTimeoutMs(2));

  it("every well-formed name parses", () => {
    fc.assert(
      fc.property(ID, ID, fc.constantFrom(...COLLECTIONS), (subject, id, collection) => {
        expect(parseSubjectName(`subjects/${subject}`)).toBe(subject);
        expect(parseChildName(`subjects/${subject}/${collection}/${id}`, collection)).toEqual({ subjectId: subject, id });
      }),
      fuzzParameters(),
    );
  }, fuzzTimeoutMs());
});
