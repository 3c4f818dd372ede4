import { createChannel, createClient, createServer } from "nice-grpc";
import { errorDetailsServerMiddleware } from "nice-grpc-error-details";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { createProfileGate } from "./profile-gate.js";

const v1 = continuity.v1;

// The reference server claims every profile that has methods, so the gate is checked on a
// server built here that claims core alone.
describe("profile gate (GEN-003)", () => {
  const server = createServer().use(errorDetailsServerMiddleware).use(createProfileGate([v1.Profile.PROFILE_CORE]));
  let address = "";
  beforeAll(async () => {
    server.add(v1.PortabilityServiceDefinition, {
      async *exportSubject() {},
      async importBundle() {
        return { subject: "", recordsImported: 0n, recordsSkipped: 0n };
      },
      async createMigration() {
        return {};
      },
      async getMigration() {
        return {};
      },
      async cancelMigration() {
        return {};
      },
      async *transferSubject() {},
    });
    address = `127.0.0.1:${await server.listen("127.0.0.1:0")}`;
  });
  afterAll(() => server.forceShutdown());

  it("answers a method of an unclaimed profile UNIMPLEMENTED / PROFILE_NOT_SUPPORTED naming the profile", async () => {
    const channel = createChannel(address);
    const client = createClient(v1.PortabilityServiceDefinition, channel);
    const error = await client.getMigration({ name: "x" }).then(
      () => undefined,
      (e: unknown) => e as { code: number; details: string },
    );
    channel.close();
    expect(error?.code).toBe(12);
    expect(error?.details).toMatch(/PROFILE_PORTABILITY/);
  });
});
