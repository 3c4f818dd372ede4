/**
 * The proto3 JSON form of bundle parts, which the records digest and the signature commit to
 * (docs/spec/portability.md, "Records digest").
 *
 * It is computed from a part's protobuf bytes, not from a generated type: the generated
 * TypeScript maps timestamps to `Date` and would drop sub-millisecond digits that another
 * implementation's bundle may carry, changing the digest of a valid bundle. Two readers share
 * that work:
 *
 * - a descriptor-driven codec (@bufbuild/protobuf, with the descriptor set `pnpm gen` writes),
 *   which reads any part;
 * - a reader of delta records only (`delta-json.ts`), which are nearly every record of a
 *   bundle. Profiling showed the codec's pass over each delta — objects built, then walked
 *   again to write JSON — to be most of an export's CPU. The reader writes the canonical JSON
 *   straight from the bytes, and hands any delta it is not sure of (a field twice, an unknown
 *   field or enum value, a timestamp out of range) to the codec.
 *
 * Either way a record comes out as *pieces*: the canonical JSON before its bulk bytes (a
 * delta's payload, a snapshot's state), those bytes, and the JSON after them. The digest
 * hashes the bulk bytes' base64 in slices, so no record's JSON is ever one string.
 */
import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary, toJson, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { canonicalPieces, type DigestPieces } from "./digest.js";
import { deltaRecordPieces } from "./delta-json.js";

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(new URL("./continuity-v1.binpb", import.meta.url))));

function message(typeName: string): DescMessage {
  const desc = registry.getMessage(typeName);
  if (desc === undefined) throw new Error(`descriptor set lacks ${typeName}`);
  return desc;
}

// ExportSubjectResponse, ImportBundleRequest and TransferSubjectResponse number their
// manifest, record and trailer alike (1, 2, 3), so one schema reads all three.
const PART = message("continuity.v1.ExportSubjectResponse");
const RECORD = message("continuity.v1.BundleRecord");
const MANIFEST = message("continuity.v1.BundleManifest");

interface GenericPart {
  part: { case: string | undefined; value: unknown };
}

interface GenericRecord {
  record: { case: string | undefined; value: Record<string, unknown> };
}

/** The proto3 JSON of the manifest or record inside one part; undefined for a trailer. */
export function partJson(partBytes: Uint8Array): JsonValue | undefined {
  const generic = fromBinary(PART, partBytes) as unknown as GenericPart;
  if (generic.part.case === "record") {
    const { json, bulk } = recordJson(generic.part.value as GenericRecord);
    if (bulk !== undefined) bulk.holder[bulk.field] = Buffer.from(bulk.bytes.buffer, bulk.bytes.byteOffset, bulk.bytes.byteLength).toString("base64");
    return json;
  }
  if (generic.part.case === "manifest") return toJson(MANIFEST, generic.part.value as never);
  return undefined;
}

/**
 * The record inside a record part as digest pieces; undefined when the part is not a
 * record (a manifest or trailer). Throws when the bytes are not a valid part.
 */
export function recordDigestPieces(partBytes: Uint8Array): DigestPieces | undefined {
  const fast = deltaRecordPieces(partBytes);
  if (fast !== undefined) return fast;
  const generic = fromBinary(PART, partBytes) as unknown as GenericPart;
  if (generic.part.case !== "record") return undefined;
  const { json, bulk } = recordJson(generic.part.value as GenericRecord);
  if (bulk === undefined) return canonicalPieces(json, undefined);
  const marker = {};
  bulk.holder[bulk.field] = marker as JsonValue;
  return canonicalPieces(json, { marker, bytes: bulk.bytes });
}

/** The large bytes field of each record kind that has one. */
const BULK_FIELD: Readonly<Record<string, string>> = { delta: "payload", snapshot: "state" };

/**
 * A record's proto3 JSON with its bulk bytes left out, and where they go. A delta's payload
 * and a snapshot's state are most of a bundle's bytes, and the codec's base64 is written in
 * JavaScript a character at a time (Node 20): the caller writes them with Node's base64 —
 * the standard, padded alphabet proto3 JSON prescribes. An empty one is omitted, as the
 * codec would.
 */
function recordJson(record: GenericRecord): { json: JsonValue; bulk?: { holder: Record<string, JsonValue>; field: string; bytes: Uint8Array } } {
  const kind = record.record.case;
  const field = kind === undefined ? undefined : BULK_FIELD[kind];
  if (field === undefined) return { json: toJson(RECORD, record as never) };
  const inner = record.record.value;
  const bytes = inner[field] as Uint8Array;
  inner[field] = EMPTY;
  const json = toJson(RECORD, record as never) as Record<string, Record<string, JsonValue>>;
  inner[field] = bytes;
  if (bytes.length === 0) return { json: json as JsonValue };
  return { json: json as JsonValue, bulk: { holder: json[kind!]!, field, bytes } };
}

const EMPTY = new Uint8Array(0);
