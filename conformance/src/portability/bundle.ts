import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createFileRegistry, fromBinary, toJson, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { continuity } from "@continuity/sdk/gen";
import { fail, Status } from "../harness/expect.js";
import { canonicalJson } from "../harness/hashing.js";
import { richErrorOf } from "../harness/raw-call.js";
import type { Dialer } from "../harness/security.js";

// The proto3 JSON form the records digest commits to (portability.md) is produced from the
// exact bytes the server sent, through a descriptor-driven codec, so that nothing is lost to a
// generated type's mapping (e.g. sub-millisecond timestamps in a Date). The descriptor set is
// built from proto/ with `buf build --as-file-descriptor-set`; test/descriptor.test.ts keeps
// it fresh.
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(new URL("./continuity-v1.binpb", import.meta.url))));

function message(typeName: string): DescMessage {
  const desc = registry.getMessage(typeName);
  if (desc === undefined) throw new Error(`descriptor set lacks ${typeName}`);
  return desc;
}

const EXPORT_RESPONSE = message("continuity.v1.ExportSubjectResponse");
const BUNDLE_RECORD = message("continuity.v1.BundleRecord");
const BUNDLE_MANIFEST = message("continuity.v1.BundleManifest");

/** One part of a bundle: its exact bytes and its decoded forms. */
export interface BundlePart {
  /** The ExportSubjectResponse bytes; also a valid ImportBundleRequest (same field numbers). */
  readonly bytes: Buffer;
  readonly decoded: continuity.v1.ExportSubjectResponse;
  /** proto3 JSON of the record or manifest inside, per the portability.md rules. */
  readonly json: JsonValue | undefined;
}

/** Decodes one raw ExportSubjectResponse. */
export function decodePart(bytes: Buffer): BundlePart {
  const decoded = continuity.v1.ExportSubjectResponse.decode(bytes);
  const generic = fromBinary(EXPORT_RESPONSE, bytes) as unknown as { part: { case: string | undefined; value: unknown } };
  let json: JsonValue | undefined;
  if (generic.part.case === "record") json = toJson(BUNDLE_RECORD, generic.part.value as never);
  else if (generic.part.case === "manifest") json = toJson(BUNDLE_MANIFEST, generic.part.value as never);
  return { bytes, decoded, json };
}

/** The records digest of portability.md over records' proto3 JSON forms, in order. */
export function recordsDigest(records: readonly JsonValue[]): Buffer {
  const hash = createHash("sha256").update(Buffer.from("continuity.v1/bundle-records\0", "latin1"));
  for (const record of records) {
    const canonical = canonicalJson(record);
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(canonical.length));
    hash.update(length).update(canonical);
  }
  return hash.digest();
}

type BundleRecord = NonNullable<continuity.v1.BundleRecord["record"]>;

/** The record inside a part, if it is one. */
export const recordOf = (part: BundlePart): BundleRecord | undefined => (part.decoded.part?.$case === "record" ? part.decoded.part.value.record : undefined);
export const trailerOf = (parts: readonly BundlePart[]): continuity.v1.BundleTrailer => (parts.at(-1)!.decoded.part as { value: continuity.v1.BundleTrailer }).value;
export const recordPart = (record: BundleRecord): BundlePart => decodePart(Buffer.from(continuity.v1.ExportSubjectResponse.encode({ part: { $case: "record", value: { record } } }).finish()));
export const manifestPart = (manifest: continuity.v1.BundleManifest): BundlePart => decodePart(Buffer.from(continuity.v1.ExportSubjectResponse.encode({ part: { $case: "manifest", value: manifest } }).finish()));
const trailerPart = (trailer: continuity.v1.BundleTrailer): BundlePart => decodePart(Buffer.from(continuity.v1.ExportSubjectResponse.encode({ part: { $case: "trailer", value: trailer } }).finish()));

/** The parts with some replaced, the trailer's count and digest made to match the records again (its signature then no longer does). */
export function reseal(parts: readonly BundlePart[], replaced: ReadonlyMap<number, BundlePart>): BundlePart[] {
  const changed = parts.map((part, index) => replaced.get(index) ?? part);
  const records = changed.slice(1, -1);
  const trailer = trailerOf(parts);
  changed[changed.length - 1] = trailerPart({ ...trailer, recordCount: BigInt(records.length), recordsDigest: recordsDigest(records.map((p) => p.json as JsonValue)) });
  return changed;
}

/** The canonical JSON the trailer's signature must sign. */
export function signaturePayload(manifest: JsonValue, recordCount: bigint, digest: Uint8Array): Buffer {
  return Buffer.from(canonicalJson({ manifest, recordCount: recordCount.toString(), recordsDigest: Buffer.from(digest).toString("hex") }));
}

function client(server: Dialer): grpc.Client {
  return new grpc.Client(server.address(), server.credentials(), { "grpc.max_receive_message_length": -1, "grpc.max_send_message_length": -1 });
}

function metadataFor(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

/** Calls ExportSubject and returns every message as the bytes the server sent. */
export async function exportRaw(server: Dialer, token: string, subject: string, timeoutMs = 30_000, after: continuity.v1.BundleStreamPosition[] = []): Promise<Buffer[]> {
  const c = client(server);
  try {
    return await new Promise<Buffer[]>((resolve, reject) => {
      const parts: Buffer[] = [];
      const call = c.makeServerStreamRequest(
        "/continuity.v1.PortabilityService/ExportSubject",
        (value: Buffer) => value,
        (value: Buffer) => value,
        Buffer.from(continuity.v1.ExportSubjectRequest.encode(continuity.v1.ExportSubjectRequest.fromPartial({ name: subject, after })).finish()),
        metadataFor(token),
        { deadline: Date.now() + timeoutMs },
      );
      call.on("data", (part: Buffer) => parts.push(part));
      call.on("error", reject);
      call.on("end", () => resolve(parts));
    });
  } finally {
    c.close();
  }
}

/** What an import call ended with. */
export type ImportOutcome = { ok: true; response: continuity.v1.ImportBundleResponse } | { ok: false; error: grpc.ServiceError };

/**
 * Sends parts to ImportBundle. With `cancelAfter`, the call is cancelled once that many parts
 * were written and acknowledged by the transport, to simulate an interrupted import.
 */
export async function importRaw(server: Dialer, token: string, parts: readonly Buffer[], options: { cancelAfter?: number; timeoutMs?: number } = {}): Promise<ImportOutcome> {
  const c = client(server);
  try {
    return await new Promise<ImportOutcome>((resolve) => {
      const call = c.makeClientStreamRequest(
        "/continuity.v1.PortabilityService/ImportBundle",
        (value: Buffer) => value,
        (value: Buffer) => value,
        metadataFor(token),
        { deadline: Date.now() + (options.timeoutMs ?? 30_000) },
        (error, response) => {
          if (error !== null) resolve({ ok: false, error });
          else resolve({ ok: true, response: continuity.v1.ImportBundleResponse.decode(response!) });
        },
      );
      const limit = options.cancelAfter ?? parts.length;
      void (async () => {
        for (const part of parts.slice(0, limit)) {
          await new Promise<void>((done) => call.write(part, () => done()));
        }
        if (options.cancelAfter === undefined) call.end();
        else setTimeout(() => call.cancel(), 200);
      })();
    });
  } finally {
    c.close();
  }
}

/** An open TransferSubject call, driven by the suite as a migration's target would. */
export interface RawTransfer {
  send(request: continuity.v1.TransferSubjectRequest): void;
  /** The next response as raw bytes, or the call's end (`undefined`) or error. */
  next(): Promise<Buffer | undefined>;
  cancel(): void;
  end(): void;
}

/** Opens TransferSubject with `token`. */
export function transferRaw(server: Dialer, token: string, timeoutMs = 30_000): RawTransfer {
  const c = client(server);
  const call = c.makeBidiStreamRequest(
    "/continuity.v1.PortabilityService/TransferSubject",
    (value: continuity.v1.TransferSubjectRequest) => Buffer.from(continuity.v1.TransferSubjectRequest.encode(value).finish()),
    (value: Buffer) => value,
    metadataFor(token),
    { deadline: Date.now() + timeoutMs },
  );
  const queue: (Buffer | undefined | Error)[] = [];
  const waiters: ((item: Buffer | undefined | Error) => void)[] = [];
  const push = (item: Buffer | undefined | Error): void => {
    const waiter = waiters.shift();
    if (waiter !== undefined) waiter(item);
    else queue.push(item);
  };
  call.on("data", (part: Buffer) => push(part));
  call.on("error", (error: Error) => {
    push(error);
    c.close();
  });
  call.on("end", () => {
    push(undefined);
    c.close();
  });
  return {
    send: (request) => call.write(request),
    async next() {
      const item = queue.length > 0 ? queue.shift() : await new Promise<Buffer | undefined | Error>((resolve) => waiters.push(resolve));
      if (item instanceof Error) throw item;
      return item;
    },
    cancel: () => call.cancel(),
    end: () => call.end(),
  };
}

/** ExportSubject of `subject` (the session's own by default), decoded; an error is thrown with its details. */
export async function exportParts(server: Dialer, token: string, subject: string, after: continuity.v1.BundleStreamPosition[] = []): Promise<BundlePart[]> {
  try {
    return (await exportRaw(server, token, subject, 30_000, after)).map(decodePart);
  } catch (error) {
    throw richErrorOf("/continuity.v1.PortabilityService/ExportSubject", error as never);
  }
}

/** The response of an import that must succeed; fails the case with the error's details otherwise. */
export function expectImported(outcome: ImportOutcome, what: string): continuity.v1.ImportBundleResponse {
  if (!outcome.ok) {
    const rich = richErrorOf("/continuity.v1.PortabilityService/ImportBundle", outcome.error);
    fail(`${what}: unexpected ${Status[rich.code]} ${rich.details} ${JSON.stringify(rich.extra)}`);
  }
  return outcome.response;
}
