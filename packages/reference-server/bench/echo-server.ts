import { Metadata, Server, ServerCredentials, type ServerWritableStream, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import { ECHO_SERVICE } from "./echo-protocol.js";

// Baseline server for `pnpm bench`, run as its own process like the reference server so both
// pay the same process and loopback costs. Prints ECHO_LISTENING=<host:port> when ready.

const subscribers = new Set<ServerWritableStream<Buffer, Buffer>>();
let blob: Buffer = Buffer.alloc(0);
const server = new Server({ "grpc.max_receive_message_length": 64 * 1024 * 1024, "grpc.max_send_message_length": 64 * 1024 * 1024 });
server.addService(ECHO_SERVICE, {
  echo(call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) {
    callback(null, call.request);
  },
  publish(call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) {
    for (const subscriber of subscribers) subscriber.write(call.request);
    callback(null, Buffer.alloc(0));
  },
  put(call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) {
    blob = call.request;
    callback(null, Buffer.alloc(0));
  },
  download(_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) {
    callback(null, blob);
  },
  subscribe(call: ServerWritableStream<Buffer, Buffer>) {
    subscribers.add(call);
    call.on("cancelled", () => subscribers.delete(call));
    // Headers tell the client the subscription is live before anything is published.
    call.sendMetadata(new Metadata());
  },
});
server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, port) => {
  if (error) throw error;
  process.stdout.write(`ECHO_LISTENING=127.0.0.1:${port}\n`);
});
process.on("SIGTERM", () => server.forceShutdown());
