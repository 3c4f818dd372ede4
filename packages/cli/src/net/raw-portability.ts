/**
 * ExportSubject and ImportBundle with the parts as bytes. A bundle's records digest and
 * signature commit to the exact bytes the exporter sent, so the CLI never decodes and
 * re-encodes a part on its way between the network and a file: the methods are declared here
 * with identity (de)serializers, and nice-grpc over grpc-js streams them with backpressure in
 * both directions (a slow disk slows the server's stream; a slow server slows the file read).
 */
import { DEFAULT_MAX_PART_BYTES } from "@continuity/bundle";
import { continuity } from "@continuity/sdk/gen";
import { createChannel, createClientFactory, Metadata, type Channel, type Client, type MethodDefinition } from "nice-grpc";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";

const bytes = (value: Uint8Array): Uint8Array => value;

const EXPORT_SUBJECT: MethodDefinition<Uint8Array, Uint8Array, Uint8Array, Uint8Array, false, true> = {
  path: "/continuity.v1.PortabilityService/ExportSubject",
  requestStream: false,
  responseStream: true,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
  options: {},
};

const IMPORT_BUNDLE: MethodDefinition<Uint8Array, Uint8Array, Uint8Array, Uint8Array, true, false> = {
  path: "/continuity.v1.PortabilityService/ImportBundle",
  requestStream: true,
  responseStream: false,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
  options: {},
};

/** The two byte-level methods, as one nice-grpc service definition. */
const RAW_PORTABILITY = { exportSubject: EXPORT_SUBJECT, importBundle: IMPORT_BUNDLE } as const;

/** A connection for the byte-level portability calls. */
export interface RawPortabilityClient {
  /** The bundle's parts exactly as the server sent them (each an ExportSubjectResponse). */
  exportSubject(subject: string, metadata: Record<string, string>, signal: AbortSignal): AsyncIterable<Uint8Array>;
  /** Sends parts (each an ImportBundleRequest, which has the same bytes as an ExportSubjectResponse). */
  importBundle(parts: AsyncIterable<Uint8Array>, metadata: Record<string, string>, signal: AbortSignal): Promise<continuity.v1.ImportBundleResponse>;
  close(): void;
}

/** Opens a channel to `address` for byte-level portability calls. */
export function createRawPortabilityClient(address: string): RawPortabilityClient {
  // A part is as large as the largest snapshot record; the bundle reader's bound is the one
  // that matters, so the channel accepts up to it and no more.
  const channel: Channel = createChannel(address, undefined, {
    "grpc.max_receive_message_length": DEFAULT_MAX_PART_BYTES,
    "grpc.max_send_message_length": DEFAULT_MAX_PART_BYTES,
  });
  const client: Client<typeof RAW_PORTABILITY> = createClientFactory().use(errorDetailsClientMiddleware).create(RAW_PORTABILITY, channel);
  return {
    exportSubject(subject, metadata, signal) {
      const request = continuity.v1.ExportSubjectRequest.encode({ name: subject, after: [] }).finish();
      return client.exportSubject(request, { metadata: Metadata(metadata), signal });
    },
    async importBundle(parts, metadata, signal) {
      const response = await client.importBundle(parts, { metadata: Metadata(metadata), signal });
      return continuity.v1.ImportBundleResponse.decode(response);
    },
    close() {
      channel.close();
    },
  };
}
