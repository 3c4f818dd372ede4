import { BinaryReader } from "@bufbuild/protobuf/wire";
import * as grpc from "@grpc/grpc-js";
import { ErrorInfo } from "nice-grpc-error-details";
import { DEFAULT_MAX_PART_BYTES } from "@continuity/bundle";
import { continuity } from "@continuity/sdk/gen";

const v1 = continuity.v1;
const identity = (value: Buffer): Buffer => value;
const HTTPS = "https://";

/**
 * The calls a migration's target makes to its source, with the bundle parts kept as the exact
 * bytes the source sent (what its digest and signature commit to). Plain grpc-js rather than
 * a generated client, because the generated decoders would re-encode the parts.
 */
export interface SourceClient {
  /** ExportSubject, part by part. Ends with the call's error if it fails. */
  exportSubject(request: continuity.v1.ExportSubjectRequest, signal: AbortSignal): AsyncIterable<Buffer>;
  /** Opens TransferSubject. */
  transfer(signal: AbortSignal): SourceTransfer;
  close(): void;
}

/** An open TransferSubject call. */
export interface SourceTransfer {
  send(request: continuity.v1.TransferSubjectRequest): void;
  /** The source's answers, as raw bytes. */
  readonly responses: AsyncIterable<Buffer>;
  end(): void;
}

/**
 * Connects to a source with its access token: `https://host:port` over TLS, its certificate
 * checked against `ca` (or the system's roots) and never falling back to plaintext
 * (PORT-040); `host:port` in plaintext, for sources on a private network.
 */
export function createSourceClient(address: string, accessToken: string, ca?: Buffer): SourceClient {
  const tls = address.startsWith(HTTPS);
  const client = new grpc.Client(tls ? address.slice(HTTPS.length) : address, tls ? grpc.credentials.createSsl(ca ?? null) : grpc.credentials.createInsecure(), {
    // A source is whatever address the client named: its parts are bounded like a file's.
    "grpc.max_receive_message_length": DEFAULT_MAX_PART_BYTES,
  });
  const metadata = (): grpc.Metadata => {
    const m = new grpc.Metadata();
    m.set("authorization", `Bearer ${accessToken}`);
    return m;
  };
  return {
    exportSubject(request, signal) {
      const call = client.makeServerStreamRequest(
        "/continuity.v1.PortabilityService/ExportSubject",
        (value: continuity.v1.ExportSubjectRequest) => Buffer.from(v1.ExportSubjectRequest.encode(value).finish()),
        identity,
        request,
        metadata(),
      );
      signal.addEventListener("abort", () => call.cancel(), { once: true });
      return call as AsyncIterable<Buffer>;
    },
    transfer(signal) {
      const call = client.makeBidiStreamRequest(
        "/continuity.v1.PortabilityService/TransferSubject",
        (value: continuity.v1.TransferSubjectRequest) => Buffer.from(v1.TransferSubjectRequest.encode(value).finish()),
        identity,
        metadata(),
      );
      signal.addEventListener("abort", () => call.cancel(), { once: true });
      return {
        send: (request) => call.write(request),
        responses: call as AsyncIterable<Buffer>,
        end: () => call.end(),
      };
    },
    close: () => client.close(),
  };
}

/** The ErrorInfo a source's error carries (google.rpc.Status in grpc-status-details-bin), if any. */
export function errorInfoOf(error: unknown): { readonly reason: string; readonly metadata: Readonly<Record<string, string>> } | undefined {
  const raw = (error as { metadata?: grpc.Metadata } | undefined)?.metadata?.get("grpc-status-details-bin")[0];
  if (!(raw instanceof Buffer)) return undefined;
  try {
    const reader = new BinaryReader(raw);
    while (reader.pos < reader.len) {
      const [field, wireType] = reader.tag();
      if (field !== 3) {
        reader.skip(wireType);
        continue;
      }
      const any = new BinaryReader(reader.bytes());
      let typeUrl = "";
      let value: Uint8Array = new Uint8Array();
      while (any.pos < any.len) {
        const [f, w] = any.tag();
        if (f === 1) typeUrl = any.string();
        else if (f === 2) value = any.bytes();
        else any.skip(w);
      }
      if (typeUrl.endsWith("/google.rpc.ErrorInfo")) {
        const info = ErrorInfo.decode(value);
        return { reason: info.reason, metadata: info.metadata };
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}
