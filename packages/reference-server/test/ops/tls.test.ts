// TLS over real connections: the server CLI serves TLS from --tls-cert/--tls-key (and asks for
// client certificates with --tls-client-ca), and the SDK dials it with https:// or `tls`,
// saying what is wrong when the two sides disagree. Certificates are made at test time.
import { once } from "node:events";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { SignJWT, importJWK, type JWK } from "jose";
import { Status } from "nice-grpc-common";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { createAssertionTokenProvider, createContinuityClient, type ClientTlsOptions, type ContinuityClient } from "@continuity/sdk";
import { startTestServer, type TestServer } from "../../src/testing/harness.js";
import { spawnServer, type ServerProcess } from "./server-process.js";
import { createTestCertificates, type TestCertificates } from "./tls-certificates.js";

const v1 = continuity.v1;

let scratch: string;
let certs: TestCertificates;
const servers: ServerProcess[] = [];
const clients: ContinuityClient[] = [];

/** Starts the CLI with the dev platforms on `<scratch>/<name>` and TLS flags; resolves to its port. */
async function startServer(name: string, args: readonly string[]): Promise<{ port: string; dataDir: string }> {
  const dataDir = join(scratch, name);
  const server = spawnServer(["--listen", "127.0.0.1:0", "--data-dir", dataDir, "--log-level", "warn", "--migration-sources", "127.0.0.0/8,::1", ...args], { CONTINUITY_PLATFORMS: undefined });
  servers.push(server);
  const address = await server.ready();
  return { port: address.slice(address.lastIndexOf(":") + 1), dataDir };
}

/** A client of dev platform demo-a of the server in `dataDir`; no retries, so failures surface at once. */
function clientFor(dataDir: string, address: string, tls?: true | ClientTlsOptions): ContinuityClient {
  const client = createContinuityClient({
    address,
    ...(tls === undefined ? {} : { tls }),
    deadlineMs: 5_000,
    retry: { maxAttempts: 1 },
    tokenProvider: createAssertionTokenProvider({
      deviceId: "laptop",
      async getAssertion() {
        const jwk = JSON.parse(await readFile(join(dataDir, "dev-platforms", "demo-a.private.jwk"), "utf8")) as JWK;
        const now = Math.floor(Date.now() / 1000);
        return new SignJWT({ iss: "demo-a", aud: "continuity", sub: "ana", iat: now, exp: now + 60, jti: randomUUID() })
          .setProtectedHeader({ alg: "ES256", typ: "continuity-assertion+jwt", kid: jwk.kid ?? "" })
          .sign(await importJWK(jwk, "ES256"));
      },
    }),
  });
  clients.push(client);
  return client;
}

/** Signs in, creates a stream and appends to it: a real authenticated round trip. */
async function roundTrip(client: ContinuityClient): Promise<bigint> {
  const { subject } = await client.session();
  const { stream } = await client.streams.createStream({
    parent: subject,
    streamId: "",
    stream: { type: "org.example.tls", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  const appended = await client.streams.appendDeltas({ stream: stream!.name, deltas: [{ payload: Buffer.from('{"over":"tls"}') }], clientSequence: 1n });
  return appended.headVersion;
}

async function failure(promise: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: number; message: string };
  }
  throw new Error("expected the call to fail");
}

let tlsServer: { port: string; dataDir: string };
let mtlsServer: { port: string; dataDir: string };
let plaintext: TestServer;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "continuity-tls-"));
  certs = await createTestCertificates(scratch);
  const tls = ["--tls-cert", certs.serverCertFile, "--tls-key", certs.serverKeyFile];
  [tlsServer, mtlsServer, plaintext] = await Promise.all([
    startServer("tls", [...tls, "--handshake-seconds", "1"]),
    startServer("mtls", [...tls, "--tls-client-ca", certs.caFile]),
    startTestServer(),
  ]);
});

afterAll(async () => {
  for (const client of clients) client.close();
  for (const server of servers) server.kill();
  await Promise.all(servers.map((server) => server.exited()));
  await plaintext?.close();
  await rm(scratch, { recursive: true, force: true });
});

describe("TLS", () => {
  it("serves TLS: the SDK signs in and appends over https:// trusting the test CA", async () => {
    const client = clientFor(tlsServer.dataDir, `https://localhost:${tlsServer.port}`, { ca: certs.ca });
    expect(await roundTrip(client)).toBeGreaterThan(0n);
  });

  it("takes `tls` as the explicit switch: a bare host:port is then dialed with TLS", async () => {
    const client = clientFor(tlsServer.dataDir, `localhost:${tlsServer.port}`, { ca: certs.ca });
    expect(client.address).toBe(`https://localhost:${tlsServer.port}`);
    expect((await client.serverInfo.getServerInfo({})).implementation).toMatch(/continuity-reference-server/);
    expect(() => clientFor(tlsServer.dataDir, `http://localhost:${tlsServer.port}`, true)).toThrow(/says plaintext but the tls option says TLS/);
  });

  it("a plaintext dial to the TLS port fails naming TLS as the likely cause", async () => {
    const error = await failure(clientFor(tlsServer.dataDir, `http://localhost:${tlsServer.port}`).serverInfo.getServerInfo({}));
    expect(error.code).toBe(Status.UNAVAILABLE);
    expect(error.message).toMatch(new RegExp(`most likely serves TLS — dial https://localhost:${tlsServer.port}`));
  });

  it("a TLS dial to a plaintext port fails naming plaintext as the likely cause", async () => {
    const port = plaintext.address.slice(plaintext.address.lastIndexOf(":") + 1);
    const error = await failure(clientFor(tlsServer.dataDir, `https://localhost:${port}`, { ca: certs.ca }).serverInfo.getServerInfo({}));
    expect(error.code).toBe(Status.UNAVAILABLE);
    expect(error.message).toMatch(new RegExp(`does not answer TLS: it most likely serves plaintext — dial http://localhost:${port}`));
  });

  it("a certificate the client does not trust fails saying to pass tls.ca", async () => {
    const error = await failure(clientFor(tlsServer.dataDir, `https://localhost:${tlsServer.port}`).session());
    expect(error.code).toBe(Status.UNAVAILABLE);
    expect(error.message).toMatch(/is not trusted: .* pass the CA that signed it as tls\.ca/);
  });

  it("closes a TLS connection that never sends the HTTP/2 preface after --handshake-seconds", async () => {
    const socket = tlsConnect({ host: "127.0.0.1", port: Number(tlsServer.port), servername: "localhost", ca: certs.ca, ALPNProtocols: ["h2"] });
    await once(socket, "secureConnect");
    socket.resume();
    const started = Date.now();
    await once(socket, "close");
    expect(Date.now() - started).toBeGreaterThan(500);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe("mutual TLS (--tls-client-ca)", () => {
  it("accepts a client certificate the CA signed", async () => {
    const client = clientFor(mtlsServer.dataDir, `https://localhost:${mtlsServer.port}`, {
      ca: certs.ca,
      certificate: certs.client.cert,
      privateKey: certs.client.key,
    });
    expect(await roundTrip(client)).toBeGreaterThan(0n);
  });

  it("refuses a client without a certificate, saying one is required", async () => {
    const error = await failure(clientFor(mtlsServer.dataDir, `https://localhost:${mtlsServer.port}`, { ca: certs.ca }).serverInfo.getServerInfo({}));
    expect(error.code).toBe(Status.UNAVAILABLE);
    expect(error.message).toMatch(/refused the TLS handshake over the client certificate|closed the connection right after the TLS handshake: it most likely requires a client certificate/);
  });

  it("refuses a client certificate from another CA", async () => {
    const client = clientFor(mtlsServer.dataDir, `https://localhost:${mtlsServer.port}`, {
      ca: certs.ca,
      certificate: certs.strangerClient.cert,
      privateKey: certs.strangerClient.key,
    });
    const error = await failure(client.serverInfo.getServerInfo({}));
    expect(error.code).toBe(Status.UNAVAILABLE);
    // TLS 1.3: the client's handshake is done before the server refuses its certificate.
    expect(error.message).toMatch(/refused the TLS handshake over the client certificate|closed the connection right after the TLS handshake: it most likely requires a client certificate/);
  });
});

describe("TLS settings at start", () => {
  it("refuses a certificate without its key, a key of another certificate, a client CA that is no certificate, a missing file: exit 2 naming the flag", async () => {
    const { serverCertFile: cert, serverKeyFile: key, caFile: ca } = certs;
    const cases: [string[], RegExp][] = [
      [["--tls-cert", cert], /a certificate needs its key/],
      [["--tls-cert", cert, "--tls-key", ca], /invalid --tls-cert \/ --tls-key: /],
      [["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", key], /invalid --tls-client-ca \(CONTINUITY_TLS_CLIENT_CA\)/],
      [["--tls-cert", "/no/such.pem", "--tls-key", key], /invalid --tls-cert \(CONTINUITY_TLS_CERT\): cannot read \/no\/such\.pem/],
    ];
    await Promise.all(
      cases.map(async ([args, message]) => {
        const server = spawnServer(["--listen", "127.0.0.1:0", "--data-dir", join(scratch, `bad-${randomUUID()}`), ...args]);
        servers.push(server);
        expect(await server.exited(), args.join(" ")).toBe(2);
        expect(server.stderr()).toMatch(message);
      }),
    );
  });
});

describe("migration from a TLS source (PORT-040)", () => {
  /** An access token for the source's subject of account ana, as a client would hand it over. */
  async function accessToken(client: ContinuityClient, dataDir: string): Promise<string> {
    const jwk = JSON.parse(await readFile(join(dataDir, "dev-platforms", "demo-a.private.jwk"), "utf8")) as JWK;
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ iss: "demo-a", aud: "continuity", sub: "ana", iat: now, exp: now + 60, jti: randomUUID() })
      .setProtectedHeader({ alg: "ES256", typ: "continuity-assertion+jwt", kid: jwk.kid ?? "" })
      .sign(await importJWK(jwk, "ES256"));
    const exchanged = await client.tokens.exchangeToken({ grantType: "urn:ietf:params:oauth:grant-type:token-exchange", subjectTokenType: "urn:ietf:params:oauth:token-type:jwt", subjectToken: assertion, scope: "", deviceId: "laptop", deviceDisplayName: "" });
    return exchanged.accessToken;
  }

  async function migrate(target: { port: string; dataDir: string }, source: string, token: string): Promise<continuity.v1.Migration> {
    const client = clientFor(target.dataDir, `https://localhost:${target.port}`, { ca: certs.ca });
    const { subject } = await client.session();
    let { migration } = await client.portability.createMigration({ parent: subject, source, sourceAccessToken: token, sourceSubject: "" });
    const deadline = Date.now() + 20_000;
    while (migration!.state !== v1.MigrationState.MIGRATION_STATE_COMPLETED && migration!.state !== v1.MigrationState.MIGRATION_STATE_FAILED) {
      if (Date.now() > deadline) throw new Error(`the migration is still in state ${migration!.state}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
      migration = (await client.portability.getMigration({ name: migration!.name })).migration;
    }
    return migration!;
  }

  it("moves a subject from an https:// source whose certificate chains to --migration-ca, and fails on one it cannot verify", async () => {
    const tls = ["--tls-cert", certs.serverCertFile, "--tls-key", certs.serverKeyFile];
    const [source, untrusting, trusting] = await Promise.all([startServer("migration-source", tls), startServer("migration-no-ca", tls), startServer("migration-ca", [...tls, "--migration-ca", certs.caFile])]);
    const sourceClient = clientFor(source.dataDir, `https://localhost:${source.port}`, { ca: certs.ca });
    const head = await roundTrip(sourceClient);
    const token = await accessToken(sourceClient, source.dataDir);
    const address = `https://localhost:${source.port}`;

    // The system's roots do not hold the test CA: the handshake fails, and nothing moves.
    const refused = await migrate(untrusting, address, token);
    expect(refused.state).toBe(v1.MigrationState.MIGRATION_STATE_FAILED);
    expect(refused.error).toMatch(/certificate|UNAVAILABLE/i);
    expect((await sourceClient.streams.listStreams({ parent: (await sourceClient.session()).subject, pageSize: 0, pageToken: "", type: "" })).streams).toHaveLength(1);

    const moved = await migrate(trusting, address, token);
    expect(moved.state, moved.error).toBe(v1.MigrationState.MIGRATION_STATE_COMPLETED);
    expect(moved.source).toBe(address);
    const target = clientFor(trusting.dataDir, `https://localhost:${trusting.port}`, { ca: certs.ca });
    const { streams } = await target.streams.listStreams({ parent: (await target.session()).subject, pageSize: 0, pageToken: "", type: "" });
    expect(streams.map((s) => s.headVersion)).toEqual([head]);
  });
});
