// Child process of subscription-replica.test.ts: starts a replica against the given server,
// closes the client once the subscription is live, and then has nothing left to do — so it
// must exit by itself. A subscription that outlives `client.close()` keeps it running.
import { createContinuityClient, createReplica, createStaticTokenProvider } from "../../src/index.js";

const [address] = process.argv.slice(2);
if (address === undefined) throw new Error("usage: closing-client <address>");
const client = createContinuityClient({
  address,
  tokenProvider: createStaticTokenProvider({ token: "t", expiresAt: undefined, subject: "subjects/s1", device: "subjects/s1/devices/laptop" }),
});
const replica = await createReplica(client);
replica.on("ended", (error) => process.stdout.write(`ENDED ${error.reason ?? ""}\n`));
await replica.whenConnected();
process.stdout.write("CONNECTED\n");
client.close();
