import { createReadStream } from "node:fs";
import { Server, ServerCredentials, type sendUnaryData, type ServerReadableStream, type ServerWritableStream, type ServiceDefinition } from "@grpc/grpc-js";
import { DEFAULT_MAX_PART_BYTES, readFrames } from "@continuity/bundle";
import { continuity } from "@continuity/sdk/gen";

// The transport floor of the portability bench: a bare @grpc/grpc-js server answering
// ExportSubject and ImportBundle on their real paths, so the bench's own export and import
// clients run against it unchanged. ExportSubject streams the parts of the `.cbundle` file
// named by BUNDLE_FLOOR_FILE, read from disk as they go; ImportBundle counts the parts it
// receives and answers as an importer that stored them. No protobuf decoding, no store, no
// hashing: what is left is what moving the same messages over gRPC costs. Run as its own
// process, like the reference server. Prints FLOOR_LISTENING=<host:port> when ready.

const v1 = continuity.v1;
const identity = (bytes: Buffer): Buffer => bytes;
const method = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/continuity.v1.PortabilityService/${path}`,
  requestStream,
  responseStream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});
const SERVICE = { exportSubject: method("ExportSubject", false, true), importBundle: method("ImportBundle", true, false) } satisfies ServiceDefinition;

const file = process.env["BUNDLE_FLOOR_FILE"];
if (file === undefined) throw new Error("BUNDLE_FLOOR_FILE names the bundle to serve");

const server = new Server({ "grpc.max_receive_message_length": DEFAULT_MAX_PART_BYTES, "grpc.max_send_message_length": DEFAULT_MAX_PART_BYTES });
server.addService(SERVICE, {
  async exportSubject(call: ServerWritableStream<Buffer, Buffer>) {
    try {
      for await (const part of readFrames(createReadStream(file, { highWaterMark: 1 << 20 }))) {
        if (!call.write(Buffer.from(part.buffer, part.byteOffset, part.byteLength))) await new Promise((resolve) => call.once("drain", resolve));
      }
      call.end();
    } catch (error) {
      call.destroy(error as Error);
    }
  },
  importBundle(call: ServerReadableStream<Buffer, Buffer>, callback: sendUnaryData<Buffer>) {
    let parts = 0;
    call.on("data", () => (parts += 1));
    call.on("end", () => callback(null, Buffer.from(v1.ImportBundleResponse.encode({ subject: "subjects/floor", recordsImported: BigInt(Math.max(0, parts - 2)), recordsSkipped: 0n }).finish())));
  },
});
server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`FLOOR_LISTENING=127.0.0.1:${port}\n`);
});
process.on("SIGTERM", () => server.forceShutdown());
