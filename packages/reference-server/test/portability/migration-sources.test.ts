import { afterEach, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { checkSource, createSourcePolicy, parseRange, parseSourceAddress } from "../../src/services/portability/source-policy.js";
import { failure, jsonBytes, startTestServer, type Session, type TestServer } from "../../src/testing/harness.js";

// PORT-041: CreateMigration makes the target dial an address a caller chose. By default only
// public unicast addresses are dialed, so no signed-in person can point the server at the
// operator's own network; the operator widens that with --migration-sources.
const v1 = continuity.v1;
const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(migrationSources: readonly string[]): Promise<TestServer> {
  const server = await startTestServer({ migrationSources, maintenanceIntervalMs: 0 });
  servers.push(server);
  return server;
}

function portOf(server: TestServer): string {
  return server.address.slice(server.address.lastIndexOf(":") + 1);
}

async function sourceWithState(): Promise<{ server: TestServer; session: Session }> {
  const server = await start([]);
  const session = await server.signIn("course-a", "ana", { deviceId: "laptop", scope: "state.read state.write identity.manage" });
  const { stream } = await session.clients.stream.createStream({
    parent: session.subject,
    streamId: "notes",
    stream: { type: "org.example.notes", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  await session.clients.stream.appendDeltas({ stream: stream!.name, clientSequence: 1n, deltas: [{ payload: jsonBytes({ a: 1 }) }] });
  return { server, session };
}

async function waitForEnd(session: Session, name: string): Promise<continuity.v1.Migration> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const { migration } = await session.clients.portability.getMigration({ name });
    const state = migration!.state;
    if (state === v1.MigrationState.MIGRATION_STATE_COMPLETED || state === v1.MigrationState.MIGRATION_STATE_FAILED) return migration!;
    if (Date.now() > deadline) throw new Error(`migration still in state ${state}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("migration sources a target dials (PORT-041)", () => {
  it("refuses, by default, every loopback, private, link-local or unspecified form of an address, before anything starts", async () => {
    const source = await sourceWithState();
    const target = await start([]);
    const person = await target.signIn("course-a", "ana", { deviceId: "laptop", scope: "state.read state.write identity.manage" });
    const port = portOf(source.server);
    const refused = [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      // Names the resolver turns into loopback, and an IPv4-mapped IPv6 loopback.
      `2130706433:${port}`,
      `0x7f000001:${port}`,
      `[::ffff:127.0.0.1]:${port}`,
      `[::1]:${port}`,
      // Linux connects the unspecified address to the machine itself.
      `0.0.0.0:${port}`,
      "169.254.169.254:80",
      "https://169.254.169.254:443",
      "0xa9fea9fe:80",
      "10.0.0.1:50051",
      "192.168.1.1:50051",
      "100.64.0.1:50051",
      "[fe80::1]:50051",
      "[fd00::1]:50051",
    ];
    for (const address of refused) {
      const call = failure(person.clients.portability.createMigration({ parent: person.subject, source: address, sourceAccessToken: source.session.token, sourceSubject: "" }));
      expect(await call, address).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_FIELD", fields: ["source"] });
    }
    // Nothing was started: the subject has no migration running, so a new one is not a conflict.
    const loopbackTarget = await start(["127.0.0.0/8"]);
    const other = await loopbackTarget.signIn("course-a", "ana", { deviceId: "laptop", scope: "state.read state.write identity.manage" });
    const { migration } = await other.clients.portability.createMigration({ parent: other.subject, source: `localhost:${port}`, sourceAccessToken: source.session.token, sourceSubject: "" });
    const ended = await waitForEnd(other, migration!.name);
    expect(ended.state, ended.error).toBe(v1.MigrationState.MIGRATION_STATE_COMPLETED);
  });

  it("dials an operator's range, and only that range: a source outside it is still refused", async () => {
    const source = await sourceWithState();
    const target = await start(["127.0.0.1/32"]);
    const person = await target.signIn("course-a", "ana", { deviceId: "laptop", scope: "state.read state.write identity.manage" });
    const port = portOf(source.server);
    // 127.0.0.2 is loopback like 127.0.0.1, but not in the operator's range.
    expect(await failure(person.clients.portability.createMigration({ parent: person.subject, source: `127.0.0.2:${port}`, sourceAccessToken: source.session.token, sourceSubject: "" }))).toMatchObject({
      code: "INVALID_ARGUMENT",
      fields: ["source"],
    });
    const { migration } = await person.clients.portability.createMigration({ parent: person.subject, source: `127.0.0.1:${port}`, sourceAccessToken: source.session.token, sourceSubject: "" });
    const ended = await waitForEnd(person, migration!.name);
    expect(ended.state, ended.error).toBe(v1.MigrationState.MIGRATION_STATE_COMPLETED);
    const { streams } = await person.clients.stream.listStreams({ parent: person.subject, pageSize: 0, pageToken: "", type: "" });
    expect(streams.map((s) => s.headVersion)).toEqual([1n]);
  });

  it("lets a name that cannot be resolved fail the migration, not the call (PORT-035)", async () => {
    const target = await start([]);
    const person = await target.signIn("course-a", "ana", { deviceId: "laptop", scope: "state.read state.write identity.manage" });
    const { migration } = await person.clients.portability.createMigration({ parent: person.subject, source: "no-such-host.invalid:50051", sourceAccessToken: "token", sourceSubject: "" });
    const ended = await waitForEnd(person, migration!.name);
    expect(ended.state).toBe(v1.MigrationState.MIGRATION_STATE_FAILED);
    expect(ended.error).toMatch(/no-such-host\.invalid could not be resolved/);
  });
});

describe("the source policy", () => {
  it("allows public unicast addresses and judges a mapped IPv4 address as IPv4", () => {
    const policy = createSourcePolicy();
    for (const address of ["8.8.8.8", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]) expect(policy.allows(address), address).toBe(true);
    for (const address of ["127.0.0.1", "::1", "0.0.0.0", "::", "10.1.2.3", "172.16.0.1", "192.168.0.1", "169.254.169.254", "100.64.0.1", "224.0.0.1", "255.255.255.255", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "2002:a9fe:a9fe::1", "64:ff9b::a9fe:a9fe", "not an address"]) {
      expect(policy.allows(address), address).toBe(false);
    }
  });

  it("adds the operator's ranges, in either family and as mapped IPv4 ranges", () => {
    const policy = createSourcePolicy(["10.0.0.0/8", "::1", "::ffff:192.168.0.0/112"]);
    expect(policy.allows("10.255.0.1")).toBe(true);
    expect(policy.allows("::ffff:10.1.1.1")).toBe(true);
    expect(policy.allows("11.0.0.1")).toBe(true);
    expect(policy.allows("172.16.0.1")).toBe(false);
    expect(policy.allows("::1")).toBe(true);
    expect(policy.allows("127.0.0.1")).toBe(false);
    expect(policy.allows("192.168.3.4")).toBe(true);
    expect(policy.allows("192.169.0.1")).toBe(true);
    expect(() => parseRange("10.0.0.0/33")).toThrow(/not an IP address or CIDR range/);
    expect(() => parseRange("example.com")).toThrow(/not an IP address or CIDR range/);
  });

  it("pins a name to the address it checked, keeping the name for TLS and the authority", async () => {
    const checked = await checkSource(parseSourceAddress("localhost:4100"), createSourcePolicy(["127.0.0.0/8"]));
    expect(checked).toEqual({ kind: "allowed", pinned: { dial: "127.0.0.1:4100", host: "localhost", port: 4100 } });
    expect(await checkSource(parseSourceAddress("[::1]:4100"), createSourcePolicy(["::1"]))).toEqual({ kind: "allowed", pinned: { dial: "[::1]:4100", host: "::1", port: 4100 } });
  });
});
