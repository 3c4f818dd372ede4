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
  if (generic.part.case === "record") return toJson(RECORD, generic.part.value as never);
  if (generic.part.case === "manifest") return toJson(MANIFEST, generic.part.value as never);
  return undefined;
}
