/**
 * The proto3 JSON form of bundle parts, which the records digest and the signature commit to
 * (docs/spec/portability.md, "Records digest").
 *
 * It is computed from a part's protobuf bytes through a descriptor-driven codec
 * (@bufbuild/protobuf), not from a generated type: the generated TypeScript maps timestamps
 * to `Date` and would drop sub-millisecond digits that another implementation's bundle may
 * carry, changing the digest of a valid bundle. The descriptor set is written by `pnpm gen`.
 */
import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary, toJson, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

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

/** The proto3 JSON of the manifest or record inside one part; undefined for a trailer. */
export function partJson(partBytes: Uint8Array): JsonValue | undefined {
  const generic = fromBinary(PART, partBytes) as unknown as { part: { case: string | undefined; value: unknown } };
  if (generic.part.case === "record") return recordJson(generic.part.value as GenericRecord);
  if (generic.part.case === "manifest") return toJson(MANIFEST, generic.part.value as never);
  return undefined;
}

interface GenericRecord {
  record: { case: string | undefined; value: Record<string, unknown> };
}

/** The large bytes field of each record kind that has one. */
const BULK_FIELD: Readonly<Record<string, string>> = { delta: "payload", snapshot: "state" };

/**
 * A record's proto3 JSON. A delta's payload and a snapshot's state are most of a bundle's
 * bytes, and the codec's base64 is written in JavaScript a character at a time (Node 20),
 * which profiling showed to be most of an export's CPU. So that one field is left out of the
 * codec's pass and written with Node's native base64 — the same standard, padded alphabet
 * proto3 JSON prescribes — and an empty one is omitted, as the codec would.
 */
function recordJson(record: GenericRecord): JsonValue {
  const kind = record.record.case;
  const field = kind === undefined ? undefined : BULK_FIELD[kind];
  if (field === undefined) return toJson(RECORD, record as never);
  const inner = record.record.value;
  const bulk = inner[field] as Uint8Array;
  inner[field] = EMPTY;
  const json = toJson(RECORD, record as never) as Record<string, Record<string, JsonValue>>;
  inner[field] = bulk;
  if (bulk.length > 0) json[kind!]![field] = Buffer.from(bulk.buffer, bulk.byteOffset, bulk.byteLength).toString("base64");
  return json as JsonValue;
}

const EMPTY = new Uint8Array(0);
