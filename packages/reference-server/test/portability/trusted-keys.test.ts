import { createChannel, createClient } from "nice-grpc";
import { Metadata } from "nice-grpc-common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PortabilityServiceRawDefinition } from "../../src/services/portability-service.js";
import { startTestServer, type TestServer } from "../../src/testing/harness.js";

/** Export from one server and import into another, parts as raw bytes, like the CLI does. */
async function carry(from: TestServer, fromToken: string, to: TestServer, toToken: string) {
  const source = createChannel(from.address);
  const target = createChannel(to.address);
  try {
    const auth = (token: string) => ({ metadata: Metadata({ authorization: `Bearer ${token}` }) });
    const parts: Uint8Array[] = [];
    for await (const part of createClient(PortabilityServiceRawDefinition, source).exportSubject({ name: "subjects/-", after: [] }, auth(fromToken))) parts.push(part);
    return await createClient(PortabilityServiceRawDefinition, target).importBundle((async function* () {
      yield* parts;
    })(), auth(toToken));
  } finally {
    source.close();
    target.close();
  }
}

// PORT-014: an account link decides whose subject a sign-in lands in, so links travel only
// in bundles signed by a key the importing server trusts: its own, or one its operator named.
describe("account links across servers", () => {
  let vendorA: TestServer;
  let untrusting: TestServer;
  let trusting: TestServer;
  beforeAll(async () => {
    vendorA = await startTestServer();
    untrusting = await startTestServer();
    trusting = await startTestServer({ trustedBundleKeys: { keys: [vendorA.server.deps.tokens.publicJwk] } });
  });
  afterAll(async () => {
    await Promise.all([vendorA, untrusting, trusting].map((s) => s?.close()));
  });

  it("imports the second platform's link only where the exporter's key is trusted", async () => {
    const ana = await vendorA.signIn("course-a", "ana");
    await vendorA.link(ana, "course-b", "ana-on-b", { deviceId: null });
    for (const [server, trusted] of [[untrusting, false], [trusting, true]] as const) {
      const here = await server.signIn("course-a", "ana");
      const outcome = await carry(vendorA, ana.token, server, here.token);
      expect(outcome.subject).toBe(here.subject);
      const onB = await server.signIn("course-b", "ana-on-b", { deviceId: null });
      expect(onB.subject === here.subject).toBe(trusted);
    }
  });
});
