import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "server-send-limit-4mib",
  area: "SUB",
  caughtBy: ["subscription.batch-of-max-batch-bytes-is-one-event"],
  description: "The server keeps gRPC's 4 MiB cap on messages it sends, so an event or page holding a batch of max_batch_bytes cannot be sent.",
  edits: [
    {
      file: "server.ts",
      find: "    \"grpc.max_receive_message_length\": maxMessageBytes,\n",
      replace: "    \"grpc.max_receive_message_length\": maxMessageBytes,\n    \"grpc.max_send_message_length\": 4 * 1024 * 1024,\n",
    },
  ],
});
