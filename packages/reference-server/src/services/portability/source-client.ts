import { BinaryReader } from "@bufbuild/protobuf/wire";
import { isIP } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { ErrorInfo } from "nice-grpc-error-details";
import { DEFAULT_MAX_PART_BYTES } from "@continuity/bundle";
import { continuity } from "@continuity/sdk/gen";
import type { PinnedSource } from "./source-policy.js";

const v1 = continuity.v1;
const identity = (value: Buffer): Buffer => value;
/** The scheme that makes a migration source TLS (PORT-040). */
export const HTTPS = "https://";

/** A source as `CreateMigrationRequest.source` names it: `host:port`, or `https://host:port` for TLS. */
export function sourceHostPort(source: string): { readonly hostPort: string; readonly tls: boolean } {
  const tls = source.startsWith(HTTPS);
  return { hostPort: tls ? source.slice(HTTPS.length) : source, tls };
}

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
 * Connects to a source with its access token, at the address its policy check pinned
 * (PORT-041): over TLS when it was named `https://…`, its certificate checked for the name
 * the client gave against `ca` (or the system's roots) and never falling back to plaintext
 * (PORT-040); in plaintext otherwise, for sources on a private network.
 */
export function createSourceClient(source: PinnedSource, tls: boolean, accessToken: string, ca?: Buffer): SourceClient {
  const named = source.host.includes(":") ? `[${source.host}]:${source.port}` : `${source.host}:${source.port}`;
  const client = new grpc.Client(source.dial, tls ? grpc.credentials.createSsl(ca ?? null) : grpc.credentials.createInsecure(), {
    // A source is whatever address the client named: its parts are bounded like a file's.
    "grpc.max_receive_message_length": DEFAULT_MAX_PART_BYTES,
    // Dialed at the checked address, the source is still asked for, and over TLS verified as,
    // the name the client gave. (A server name that is an IP address is not sent: RFC 6066.)
    "grpc.default_authority": named,
    // Stryker disable next-line LogicalOperator: in plaintext grpc-js reads no TLS option, and over TLS to an IP address the override would be that address, the name grpc-js verifies anyway (the source is dialed at it) and, being an IP address, never sends
    ...(tls && isIP(source.host) === 0 ? { "grpc.ssl_target_name_override": source.host } : {}),
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
      // Stryker disable next-line ObjectLiteral,BooleanLiteral: an AbortSignal fires its abort event once; once only drops the listener after it
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
      // Stryker disable next-line ObjectLiteral,BooleanLiteral: an AbortSignal fires its abort event once; once only drops the listener after it
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
  // Stryker disable next-line OptionalChaining: only a source's gRPC error is asked, and each has metadata
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
      // Stryker disable next-line StringLiteral: every google.protobuf.Any a source sends sets its type_url
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
