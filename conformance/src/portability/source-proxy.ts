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
 *   from then on the source cannot be reached through the proxy (ExportSubject UNAVAILABLE).
 */
export type SwitchFault = "none" | "lose-committed" | "drop-commit";

/** A migration source in front of the server under test, on 127.0.0.1. */
export interface SourceProxy {
  /** host:port for CreateMigrationRequest.source. */
  readonly address: string;
  /** Switches that passed through, and the pause of the source's `committed` answer to each, if it answered. */
  readonly switches: { readonly committed: boolean; readonly pause?: { readonly seconds: bigint; readonly nanos: number } }[];
  close(): void;
}

function forwardedError(error: grpc.ServiceError): Partial<grpc.StatusObject> {
  // The source's google.rpc.Status (SUBJECT_MOVED and its metadata) travels as it was sent.
  const metadata = new grpc.Metadata();
  for (const value of error.metadata?.get("grpc-status-details-bin") ?? []) metadata.add("grpc-status-details-bin", value);
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
export async function startSourceProxy(upstream: Dialer, fault: SwitchFault): Promise<SourceProxy> {
  const client = new grpc.Client(upstream.address(), upstream.credentials(), { "grpc.max_receive_message_length": -1, "grpc.max_send_message_length": -1 });
  const server = new grpc.Server({ "grpc.max_receive_message_length": -1, "grpc.max_send_message_length": -1 });
  const switches: { committed: boolean; pause?: { seconds: bigint; nanos: number } }[] = [];
  let unreachable = false;
  const raw = { requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };
  server.addService(
    {
      ExportSubject: { path: EXPORT, requestStream: false, responseStream: true, ...raw },
      TransferSubject: { path: TRANSFER, requestStream: true, responseStream: true, ...raw },
    },
    {
      ExportSubject: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
        if (unreachable) {
          call.emit("error", { code: grpc.status.UNAVAILABLE, details: "the source cannot be reached" });
          return;
        }
        const out = client.makeServerStreamRequest(EXPORT, identity, identity, call.request, upstreamMetadata(call.metadata));
        call.on("cancelled", () => out.cancel());
        out.on("data", (part: Buffer) => call.write(part));
        out.on("end", () => call.end());
        out.on("error", (error: grpc.ServiceError) => call.emit("error", forwardedError(error)));
      },
      TransferSubject: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        const record: { committed: boolean; pause?: { seconds: bigint; nanos: number } } = { committed: false };
        switches.push(record);
        let ended = false;
        const finish = (error?: Partial<grpc.StatusObject>): void => {
          if (ended) return;
          ended = true;
          if (error === undefined) call.end();
          else call.emit("error", error);
        };
        const out = client.makeBidiStreamRequest(TRANSFER, identity, identity, upstreamMetadata(call.metadata));
        call.on("cancelled", () => out.cancel());
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
        call.on("end", () => out.end());
        out.on("data", (response: Buffer) => {
          const part = continuity.v1.TransferSubjectResponse.decode(response).part;
          if (part?.$case === "committed") {
            record.committed = true;
            if (part.value.pause !== undefined) record.pause = part.value.pause;
            if (fault === "lose-committed") return finish({ code: grpc.status.UNAVAILABLE, details: "connection to the source lost" });
          }
          if (!ended) call.write(response);
        });
        out.on("end", () => finish());
        out.on("error", (error: grpc.ServiceError) => {
          if (!ended) finish(forwardedError(error));
        });
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))));
  return {
    address: `127.0.0.1:${port}`,
    switches,
    close() {
      server.forceShutdown();
      client.close();
    },
  };
}
