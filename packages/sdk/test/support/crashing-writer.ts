// Child process of integration.test.ts: queues writes into a durable store while flushing,
// prints QUEUED once every write is durably queued, and waits to be killed mid-flush.
import { createAssertionTokenProvider, createContinuityClient, createFileQueueStore, openStream } from "../../src/index.js";
import { createPlatformBackend } from "../../examples/support/platform-backend.js";

const [address, keyFile, directory, countText] = process.argv.slice(2);
if (address === undefined || keyFile === undefined || directory === undefined || countText === undefined) {
  throw new Error("usage: crashing-writer <address> <key-file> <store-dir> <count>");
}
const platform = await createPlatformBackend({ platformId: "demo-a", privateJwk: keyFile });
const client = createContinuityClient({
  address,
  tokenProvider: createAssertionTokenProvider({ deviceId: "laptop", getAssertion: () => platform.assert("eve") }),
});
const handle = await openStream<{ n?: number; seen?: number[] }>(client, {
  stream: "crash",
  create: { type: "org.example.counter" },
  store: createFileQueueStore(directory),
});
const count = Number(countText);
for (let n = 1; n <= count; n += 1) {
  await handle.update((draft) => {
    draft.n = n;
  });
}
process.stdout.write("QUEUED\n");
// Keep flushing until the parent kills this process.
setInterval(() => undefined, 1_000);
