import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import * as grpc from "@grpc/grpc-js";
import { continuity } from "@continuity/sdk/gen";
import type { Dialer } from "../harness/security.js";

const EXPORT = "/continuity.v1.PortabilityService/ExportSubject";
const TRANSFER = "/continuity.v1.PortabilityService/TransferSubject";
const identity = (value: Buffer): Buffer => value;

/**
 * What the proxy does to a switch (TransferSubject) passing through it:
 * - `none`: passes it through, noting the source's `committed` answer;
 * - `lose-committed`: forwards everything, but answers the target's `commit` with
 *   UNAVAILABLE in place of the source's `committed` (the answer lost on the way back);
 * - `drop-commit`: forwards the bundle, but hangs up on the source when the target sends
 *   `commit`, and ends the target's call without an answer (the commit lost on the way out);
 *   from then on the source cannot be reached through the proxy (ExportSubject UNAVAILABLE);
 * - `tamper-trailer`: forwards the switch's bundle with one more record counted in its
 *   trailer than it carries, which no importer may take (PORT-050): the target must fail.
 */
export type SwitchFault = "none" | "lose-committed" | "drop-commit" | "tamper-trailer";

/** How the proxy listens and what else it changes on the way. */
export interface SourceProxyOptions {
  /** The loopback address it listens on (default 127.0.0.1). */
  readonly host?: "127.0.0.1" | "::1";
  /**
   * Puts a `google.rpc.LocalizedMessage` detail before the details of every error the source
   * sends (its ErrorInfo included): google.rpc.Status orders its details in no fixed way.
   */
  readonly detailFirst?: boolean;
  /**
   * Holds the first ExportSubject's parts after its first (the manifest) until `release()`:
   * the target has read what the copy will bring, and the copy waits.
   */
  readonly holdExport?: boolean;
  /** Holds the first switch's answers after its first (the switch's manifest) until `release()`. */
  readonly holdSwitch?: boolean;
  /** Replaces the pause of the source's `committed` answer (what the target must report, PORT-046). */
  readonly pause?: { readonly seconds: bigint; readonly nanos: number };
}

/** One ExportSubject that passed through. */
export interface ProxiedExport {
  /** Parts forwarded to the target so far. */
  readonly forwarded: number;
  /** Who ended the call first: the target (it cancelled), or the source (it sent all or failed). */
  readonly endedBy?: "target" | "source";
}

/** One switch (TransferSubject) that passed through. */
export interface ProxiedSwitch {
  /** Whether the source answered `committed`, and its pause. */
  readonly committed: boolean;
  readonly pause?: { readonly seconds: bigint; readonly nanos: number };
  /** Who ended the call first: the target (it cancelled or half-closed), or the source. */
  readonly endedBy?: "target" | "source";
  /** Answers forwarded to the target so far. */
  readonly forwarded: number;
}

/** A migration source in front of the server under test, on 127.0.0.1. */
export interface SourceProxy {
  /** host:port for CreateMigrationRequest.source (`[::1]:port` on IPv6). */
  readonly address: string;
  /** Switches that passed through. */
  readonly switches: readonly ProxiedSwitch[];
  /** The `:authority` of every call the proxy took, in order (how the target named the source). */
  readonly authorities: readonly string[];
  /** ExportSubject calls that passed through. */
  readonly exports: readonly ProxiedExport[];
  /** Lets a held ExportSubject (holdExport) go on. */
  release(): void;
  /** Bytes of the bundle parts forwarded to the target (ExportSubject and TransferSubject answers, `committed` excepted). */
  readonly partBytes: () => number;
  close(): void;
}

/** A google.rpc.Status field 3 (`details`) holding a google.rpc.LocalizedMessage as google.protobuf.Any. */
function localizedMessageDetail(): Uint8Array {
  const message = new BinaryWriter().tag(1, WireType.LengthDelimited).string("en-US").tag(2, WireType.LengthDelimited).string("relayed by the suite's proxy").finish();
  const any = new BinaryWriter().tag(1, WireType.LengthDelimited).string("type.googleapis.com/google.rpc.LocalizedMessage").tag(2, WireType.LengthDelimited).bytes(message).finish();
  return new BinaryWriter().tag(3, WireType.LengthDelimited).bytes(any).finish();
}

function forwardedError(error: grpc.ServiceError, detailFirst: boolean): Partial<grpc.StatusObject> {
  // The source's google.rpc.Status (SUBJECT_MOVED and its metadata) travels as it was sent;
  // with detailFirst, after a detail of another type (a repeated field's entries keep their
  // order on the wire, so this one comes first).
  const metadata = new grpc.Metadata();
  for (const value of error.metadata?.get("grpc-status-details-bin") ?? []) {
    metadata.add("grpc-status-details-bin", detailFirst && Buffer.isBuffer(value) ? Buffer.concat([localizedMessageDetail(), value]) : value);
  }
  return { code: error.code, details: error.details, metadata };
}

function upstreamMetadata(from: grpc.Metadata): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const value of from.get("authorization")) metadata.add("authorization", value);
  return metadata;
}

/**
 * Starts a proxy that passes a migration's calls (ExportSubject, TransferSubject) through to
 * `upstream` as the exact bytes sent, but for `fault` on each switch: how a real network
 * loses one message of a switch, which no client of one server can otherwise arrange.
 */
export async function startSourceProxy(upstream: Dialer, fault: SwitchFault, options: SourceProxyOptions = {}): Promise<SourceProxy> {
  const detailFirst = options.detailFirst === true;
  const client = new grpc.Client(upstream.address(), upstream.credentials(), { "grpc.max_receive_message_length": -1, "grpc.max_send_message_length": -1 });
  const server = new grpc.Server({ "grpc.max_receive_message_length": -1, "grpc.max_send_message_length": -1 });
  const switches: { committed: boolean; pause?: { seconds: bigint; nanos: number }; endedBy?: "target" | "source"; forwarded: number }[] = [];
  const authorities: string[] = [];
  const exports: { forwarded: number; endedBy?: "target" | "source" }[] = [];
  const releases: (() => void)[] = [];
  let released = false;
  let partBytes = 0;
  let unreachable = false;
  const raw = { requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };
  server.addService(
    {
      ExportSubject: { path: EXPORT, requestStream: false, responseStream: true, ...raw },
      TransferSubject: { path: TRANSFER, requestStream: true, responseStream: true, ...raw },
    },
    {
      ExportSubject: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        authorities.push(call.getHost());
        if (unreachable) {
          call.emit("error", { code: grpc.status.UNAVAILABLE, details: "the source cannot be reached" });
          return;
        }
        const record: { forwarded: number; endedBy?: "target" | "source" } = { forwarded: 0 };
        exports.push(record);
        // The first export waits after its manifest while holdExport holds it.
        const held: Buffer[] | undefined = options.holdExport === true && exports.length === 1 && !released ? [] : undefined;
        let heldEnd = false;
        let holding = held !== undefined;
        const forward = (part: Buffer): void => {
          record.forwarded += 1;
          partBytes += part.length;
          call.write(part);
        };
        if (held !== undefined) {
          releases.push(() => {
            holding = false;
            for (const part of held.splice(0)) forward(part);
            if (heldEnd && record.endedBy === undefined) {
              record.endedBy = "source";
              call.end();
            }
          });
        }
        const out = client.makeServerStreamRequest(EXPORT, identity, identity, call.request, upstreamMetadata(call.metadata));
        call.on("cancelled", () => {
          record.endedBy ??= "target";
          out.cancel();
        });
        out.on("data", (part: Buffer) => {
          if (holding && record.forwarded >= 1) held!.push(part);
          else forward(part);
        });
        out.on("end", () => {
          // A held export has not ended for the target until its parts go.
          if (holding) heldEnd = true;
          else {
            record.endedBy ??= "source";
            call.end();
          }
        });
        out.on("error", (error: grpc.ServiceError) => {
          record.endedBy ??= "source";
          call.emit("error", forwardedError(error, detailFirst));
        });
      },
      TransferSubject: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        authorities.push(call.getHost());
        const record: { committed: boolean; pause?: { seconds: bigint; nanos: number }; endedBy?: "target" | "source"; forwarded: number } = { committed: false, forwarded: 0 };
        switches.push(record);
        const endedBy = (who: "target" | "source"): void => {
          record.endedBy ??= who;
        };
        let ended = false;
        const finish = (error?: Partial<grpc.StatusObject>): void => {
          if (ended) return;
          ended = true;
          if (error === undefined) call.end();
          else call.emit("error", error);
        };
        const out = client.makeBidiStreamRequest(TRANSFER, identity, identity, upstreamMetadata(call.metadata));
        call.on("cancelled", () => {
          endedBy("target");
          out.cancel();
        });
        call.on("data", (request: Buffer) => {
          if (fault === "drop-commit" && continuity.v1.TransferSubjectRequest.decode(request).step?.$case === "commit") {
            ended = true;
            unreachable = true;
            out.cancel();
            call.end();
            return;
          }
          out.write(request);
        });
        call.on("end", () => {
          endedBy("target");
          out.end();
        });
        const onResponse = (response: Buffer): void => {
          const part = continuity.v1.TransferSubjectResponse.decode(response).part;
          if (fault === "tamper-trailer" && part?.$case === "trailer") {
            const counted = { ...part.value, recordCount: part.value.recordCount + 1n };
            if (!ended) call.write(Buffer.from(continuity.v1.TransferSubjectResponse.encode({ part: { $case: "trailer", value: counted } }).finish()));
            return;
          }
          if (part?.$case === "committed") {
            record.committed = true;
            if (options.pause !== undefined) response = Buffer.from(continuity.v1.TransferSubjectResponse.encode({ part: { $case: "committed", value: { ...part.value, pause: options.pause } } }).finish());
            const pause = options.pause ?? part.value.pause;
            if (pause !== undefined) record.pause = pause;
            if (fault === "lose-committed") return finish({ code: grpc.status.UNAVAILABLE, details: "connection to the source lost" });
          } else if (!ended) partBytes += response.length;
          if (!ended) {
            record.forwarded += 1;
            call.write(response);
          }
        };
        const onEnd = (): void => {
          endedBy("source");
          finish();
        };
        // The first switch waits after its manifest while holdSwitch holds it.
        const held: Buffer[] | undefined = options.holdSwitch === true && switches.length === 1 && !released ? [] : undefined;
        let holding = held !== undefined;
        let heldEnd = false;
        let seen = 0;
        if (held !== undefined) {
          releases.push(() => {
            holding = false;
            for (const response of held.splice(0)) onResponse(response);
            if (heldEnd) onEnd();
          });
        }
        out.on("data", (response: Buffer) => {
          seen += 1;
          if (holding && seen > 1) held!.push(response);
          else onResponse(response);
        });
        out.on("end", () => {
          if (holding) heldEnd = true;
          else onEnd();
        });
        out.on("error", (error: grpc.ServiceError) => {
          endedBy("source");
          if (!ended) finish(forwardedError(error, detailFirst));
        });
      },
    },
  );
  const host = options.host === "::1" ? "[::1]" : "127.0.0.1";
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))));
  return {
    address: `${host}:${port}`,
    switches,
    authorities,
    exports,
    partBytes: () => partBytes,
    release() {
      released = true;
      for (const release of releases.splice(0)) release();
    },
    close() {
      server.forceShutdown();
      client.close();
    },
  };
}
