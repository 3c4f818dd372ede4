import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer as createNetServer, type Socket } from "node:net";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, importJWK, type JWK } from "jose";
import { createChannel, createClientFactory } from "nice-grpc";
import { Metadata } from "nice-grpc-common";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import pg from "pg";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { createServerMetrics } from "../../src/ops/metrics.js";
import { createContinuityServer } from "../../src/server.js";
import { createSourceClient } from "../../src/services/portability/source-client.js";
import { createPostgresStore, type PostgresStore } from "../../src/store/index.js";
import { TEST_DATABASE_URL } from "../../src/testing/postgres.js";
import { LOOPBACK_SOURCES, describeFailure, jsonBytes, startTestServer, type TestServer } from "../../src/testing/harness.js";
import { spawnServer, type ServerProcess } from "../ops/server-process.js";

// State one server kept in its process, now kept in the store: each check goes through two
// replicas on one PostgreSQL schema and would fail if it lived in one of them.
const v1 = continuity.v1;

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function createStream(clients: TestServer["anonymous"], parent: string, id: string): Promise<string> {
  const { stream } = await clients.stream.createStream({
    parent,
    streamId: id,
    stream: { type: "org.example.progress", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  return stream!.name;
}

/** A TCP server that accepts and never answers: a migration from it stays copying. */
async function blackHole(): Promise<{ address: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const hole = createNetServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => hole.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(hole.address() as { port: number }).port}`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => hole.close(() => resolve()));
    },
  };
}

describe("two replicas share", () => {
  it("the count of failed link-code redemptions: 10 failures split across them lock the account (LINK-019)", async () => {
    server = await startTestServer({ replicas: 2, maintenanceIntervalMs: 0 });
    const owner = await server.signIn("course-a", "owner");
    const { code } = await owner.clients.subject.createLinkCode({ parent: owner.subject });
    const token = await server.platforms["course-b"]!.assertion("guesser");
    const before = [...server.proxy!.calls];
    for (let i = 0; i < 10; i++) {
      expect(describeFailure(await server.anonymous.subject.redeemLinkCode({ subjectToken: token, code: "AAAAAAAAAA" }).catch((e: unknown) => e))).toMatchObject({ code: "NOT_FOUND", reason: "LINK_CODE_INVALID" });
    }
    // The proxy alternated: each replica saw five of them.
    expect(server.proxy!.calls.map((n, i) => n - before[i]!)).toEqual([5, 5]);
    for (let replica = 0; replica < 2; replica++) {
      const refused = await server.anonymous.subject.redeemLinkCode({ subjectToken: token, code }).catch((e: unknown) => e);
      expect(describeFailure(refused)).toMatchObject({ code: "RESOURCE_EXHAUSTED", reason: "LINK_CODE_ATTEMPTS_EXCEEDED" });
    }
  });

  it("the hold of a switch: a write through the other replica waits for it, then goes ahead or is answered SUBJECT_MOVED (PORT-033)", async () => {
    server = await startTestServer({ replicas: 2, maintenanceIntervalMs: 0 });
    const ana = await server.signIn("course-a", "ana", { deviceId: "laptop" });
    const stream = await createStream(ana.clients, ana.subject, "held");
    await ana.clients.stream.appendDeltas({ stream, clientSequence: 1n, deltas: [{ payload: jsonBytes({ n: 1 }) }] });
    const onB = server.replicaClients(1, ana.token);
    const [host, port] = server.replicas[0]!.address.split(":") as [string, string];
    const source = createSourceClient({ dial: server.replicas[0]!.address, host, port: Number(port) }, false, ana.token);
    const begin = (target: string) => ({ step: { $case: "begin" as const, value: { name: ana.subject, target, targetSubject: "subjects/elsewhere", after: [] } } });
    const readToTrailer = async (responses: AsyncIterator<Buffer>) => {
      for (;;) {
        const next = await responses.next();
        if (next.done === true) throw new Error("TransferSubject ended before its trailer");
        if (v1.TransferSubjectResponse.decode(next.value).part?.$case === "trailer") return;
      }
    };
    try {
      // A switch on replica A that ends without commit: B held the write, then lets it go.
      const abandon = new AbortController();
      const abandoned = source.transfer(abandon.signal);
      abandoned.send(begin("127.0.0.1:1"));
      await readToTrailer(abandoned.responses[Symbol.asyncIterator]());
      let heldDone = false;
      const held = onB.stream.appendDeltas({ stream, clientSequence: 2n, deltas: [{ payload: jsonBytes({ n: 2 }) }] }).finally(() => (heldDone = true));
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(heldDone).toBe(false);
      abandon.abort();
      expect((await held).headVersion).toBe(2n);

      // A committed switch on A: the write B held is refused with the redirect, never acknowledged.
      const switched = source.transfer(new AbortController().signal);
      const responses = switched.responses[Symbol.asyncIterator]();
      switched.send(begin("127.0.0.1:2"));
      await readToTrailer(responses);
      const refused = onB.stream.appendDeltas({ stream, clientSequence: 3n, deltas: [{ payload: jsonBytes({ n: 3 }) }] }).then(
        () => undefined,
        (error: unknown) => error,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      switched.send({ step: { $case: "commit", value: {} } });
      switched.end();
      const answer = await responses.next();
      expect(answer.done !== true && v1.TransferSubjectResponse.decode(answer.value).part?.$case).toBe("committed");
      expect(describeFailure(await refused)).toMatchObject({ code: "FAILED_PRECONDITION", reason: "SUBJECT_MOVED", metadata: { target: "127.0.0.1:2", subject: "subjects/elsewhere" } });
      // Nothing but the two acknowledged writes is on the source.
      const stored = await server.store.listDeltas(ana.subjectId, "held", 0, 10);
      expect(stored.map((d) => d.version)).toEqual([1, 2]);
    } finally {
      source.close();
    }
  });

  it("who runs a migration: a replica that starts while another runs it leaves it running, and a cancel through either ends it", async () => {
    server = await startTestServer({ replicas: 2, maintenanceIntervalMs: 100 });
    const hole = await blackHole();
    let third: { server: Awaited<ReturnType<typeof createContinuityServer>>; store: PostgresStore } | undefined;
    try {
      const ana = await server.signIn("course-a", "ana");
      const onA = server.replicaClients(0, ana.token);
      const { migration } = await onA.portability.createMigration({ parent: ana.subject, source: hole.address, sourceAccessToken: "never-read", sourceSubject: "" });
      // A third server starts on the same schema, as a replica restarted by its supervisor would.
      const store = await createPostgresStore({ url: TEST_DATABASE_URL, schema: (server.replicas[0]!.store as PostgresStore).schema, poolSize: 2 });
      third = { store, server: await createContinuityServer({ store, tokens: server.tokens, logger: pino({ level: "silent" }), metrics: createServerMetrics(), maintenanceIntervalMs: 100, migrationSources: LOOPBACK_SOURCES }) };
      // Maintenance passes of all three run meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const running = await server.replicaClients(1, ana.token).portability.getMigration({ name: migration!.name });
      expect(running.migration?.state).toBe(v1.MigrationState.MIGRATION_STATE_COPYING);
      // Cancelled through B, which does not run it: ended at once, and A's runner stops without writing over it.
      const { migration: cancelled } = await server.replicaClients(1, ana.token).portability.cancelMigration({ name: migration!.name });
      expect(cancelled?.state).toBe(v1.MigrationState.MIGRATION_STATE_CANCELLED);
      const { migration: next } = await onA.portability.createMigration({ parent: ana.subject, source: hole.address, sourceAccessToken: "never-read", sourceSubject: "" });
      expect(next?.state).toBe(v1.MigrationState.MIGRATION_STATE_COPYING);
      await onA.portability.cancelMigration({ name: next!.name });
      expect((await onA.portability.getMigration({ name: migration!.name })).migration?.state).toBe(v1.MigrationState.MIGRATION_STATE_CANCELLED);
    } finally {
      await third?.server.shutdown();
      await third?.store.close();
      await hole.close();
    }
  });
});

describe("a replica killed while it runs a migration", () => {
  let processes: ServerProcess[] = [];
  let scratch: string | undefined;
  let schema: string | undefined;
  afterEach(async () => {
    for (const p of processes) p.kill();
    processes = [];
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
    if (schema !== undefined) {
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });

  it("leaves it running until its lease runs out; then the other replica ends it as interrupted", async () => {
    scratch = await mkdtemp(join(tmpdir(), "continuity-lease-"));
    schema = `lease_${randomUUID().replaceAll("-", "").slice(0, 12)}`;
    const url = new URL(TEST_DATABASE_URL);
    url.searchParams.set("schema", schema);
    const start = () => {
      const p = spawnServer(["--listen", "127.0.0.1:0", "--data-dir", scratch!, "--store", url.toString(), "--migration-sources", "127.0.0.0/8", "--log-level", "warn"], { CONTINUITY_PLATFORMS: undefined });
      processes.push(p);
      return p;
    };
    // One after another: the first creates the signing key, the platforms and the schema.
    const a = start();
    const addressA = await a.ready(30_000);
    const addressB = await start().ready(30_000);
    const hole = await blackHole();
    try {
      const jwk = JSON.parse(await readFile(join(scratch, "dev-platforms", "demo-a.private.jwk"), "utf8")) as JWK;
      const now = Math.floor(Date.now() / 1000);
      const assertion = await new SignJWT({ iss: "demo-a", aud: "continuity", sub: "ana", iat: now, exp: now + 60, jti: randomUUID() })
        .setProtectedHeader({ alg: "ES256", typ: "continuity-assertion+jwt", kid: jwk.kid ?? "" })
        .sign(await importJWK(jwk, "ES256"));
      const clients = (address: string, token?: string) => {
        const factory = createClientFactory()
          .use(errorDetailsClientMiddleware)
          .use(async function* (call, options) {
            const metadata = Metadata(options.metadata);
            if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
            return yield* call.next(call.request, { ...options, metadata });
          });
        const channel = createChannel(address);
        return { token: factory.create(v1.TokenServiceDefinition, channel), portability: factory.create(v1.PortabilityServiceDefinition, channel), channel };
      };
      const anon = clients(addressA);
      const exchanged = await anon.token.exchangeToken({ grantType: "urn:ietf:params:oauth:grant-type:token-exchange", subjectTokenType: "urn:ietf:params:oauth:token-type:jwt", subjectToken: assertion, scope: "", deviceId: "laptop", deviceDisplayName: "" });
      anon.channel.close();
      const onA = clients(addressA, exchanged.accessToken);
      const onB = clients(addressB, exchanged.accessToken);
      const { migration } = await onA.portability.createMigration({ parent: exchanged.subject, source: hole.address, sourceAccessToken: "never-read", sourceSubject: "" });
      onA.channel.close();
      a.child.kill("SIGKILL");
      await a.exited();
      const killedAt = Date.now();
      // B's maintenance looks every second; the lease (15 s by default) outlives A first.
      let state = v1.MigrationState.MIGRATION_STATE_COPYING;
      let error = "";
      while (state === v1.MigrationState.MIGRATION_STATE_COPYING && Date.now() - killedAt < 30_000) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        const got = (await onB.portability.getMigration({ name: migration!.name })).migration!;
        state = got.state;
        error = got.error;
        if (state === v1.MigrationState.MIGRATION_STATE_COPYING) expect(Date.now() - killedAt).toBeLessThan(20_000);
      }
      onB.channel.close();
      expect(state).toBe(v1.MigrationState.MIGRATION_STATE_FAILED);
      expect(error).toContain("interrupted");
      // Not before A's lease (taken at the migration's start, renewed every 5 s) could have run out.
      expect(Date.now() - killedAt).toBeGreaterThan(9_000);
    } finally {
      await hole.close();
    }
  }, 60_000);
});
