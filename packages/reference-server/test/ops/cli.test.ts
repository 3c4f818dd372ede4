import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { SignJWT, importJWK, type JWK } from "jose";
import { Status, createChannel, createClient, createClientFactory } from "nice-grpc";
import { Metadata } from "nice-grpc-common";
import { ErrorInfo, RichClientError, errorDetailsClientMiddleware } from "nice-grpc-error-details";
import { HealthDefinition } from "nice-grpc-server-health";
import { ServerReflectionService } from "nice-grpc-server-reflection";
import reflectionPb from "nice-grpc-server-reflection/lib/proto/grpc/reflection/v1/reflection_pb.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { HealthServiceDefinition } from "../../src/ops/health.js";
import { PACKAGE_DIR, spawnServer, type ServerProcess } from "./server-process.js";

const v1 = continuity.v1;
const SERVING = 1;
const NOT_SERVING = 2;

async function listServices(address: string): Promise<string[]> {
  const channel = createChannel(address);
  try {
    const client = createClient(ServerReflectionService, channel);
    const request = new reflectionPb.ServerReflectionRequest();
    request.setListServices("*");
    async function* requests() {
      yield request;
    }
    for await (const response of client.serverReflectionInfo(requests())) {
      return (response.getListServicesResponse()?.getServiceList() ?? []).map((s) => s.getName());
    }
    return [];
  } finally {
    channel.close();
  }
}

async function describeSymbol(address: string, symbol: string): Promise<number> {
  const channel = createChannel(address);
  try {
    const client = createClient(ServerReflectionService, channel);
    const request = new reflectionPb.ServerReflectionRequest();
    request.setFileContainingSymbol(symbol);
    async function* requests() {
      yield request;
    }
    for await (const response of client.serverReflectionInfo(requests())) {
      return response.getFileDescriptorResponse()?.getFileDescriptorProtoList().length ?? 0;
    }
    return 0;
  } finally {
    channel.close();
  }
}

describe("server CLI (src/main.ts)", () => {
  let dataDir: string;
  let server: ServerProcess;
  let address: string;
  /** A device-bound session on dev platform demo-a, set by the dev-platform test. */
  let session: { token: string; subject: string } | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "continuity-cli-"));
    server = spawnServer(["--metrics-listen", "127.0.0.1:0", "--log-level", "info"], {
      CONTINUITY_LISTEN: "127.0.0.1:0",
      CONTINUITY_DATA_DIR: dataDir,
      CONTINUITY_PLATFORMS: undefined,
    });
    address = await server.ready();
  });

  afterAll(async () => {
    if (server !== undefined) {
      server.kill();
      await server.exited();
    }
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
  });

  it("prints the ready line with a real port, and keeps stdout for it alone", () => {
    expect(address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(address.endsWith(":0")).toBe(false);
    expect(server.stdout().trim().split("\n")).toEqual([`CONTINUITY_LISTENING=${address}`]);
  });

  it("reports SERVING over grpc.health.v1, for the server and each service", async () => {
    const channel = createChannel(address);
    try {
      const health = createClient(HealthDefinition, channel);
      expect((await health.check({ service: "" })).status).toBe(SERVING);
      expect((await health.check({ service: "continuity.v1.StreamService" })).status).toBe(SERVING);
      await expect(health.check({ service: "no.such.Service" })).rejects.toThrow(/NOT_FOUND/);
    } finally {
      channel.close();
    }
  });

  it("answers grpc.health.v1.Health/List, which reflection lists, with every service it knows", async () => {
    expect(await describeSymbol(address, "grpc.health.v1.Health.List")).toBeGreaterThan(0);
    const channel = createChannel(address);
    try {
      const health = createClient(HealthServiceDefinition, channel);
      const { statuses } = await health.list({});
      const services = ["Token", "Subject", "Device", "Consent", "Stream", "Checkpoint", "Subscription", "Portability", "ServerInfo"];
      expect(Object.keys(statuses).sort()).toEqual(["", ...services.map((s) => `continuity.v1.${s}Service`)].sort());
      for (const status of Object.values(statuses)) expect(status.status).toBe(SERVING);
    } finally {
      channel.close();
    }
  });

  it("lists the Continuity services by reflection and serves their descriptors", async () => {
    const services = await listServices(address);
    for (const name of [
      "continuity.v1.TokenService",
      "continuity.v1.SubjectService",
      "continuity.v1.DeviceService",
      "continuity.v1.ConsentService",
      "continuity.v1.StreamService",
      "continuity.v1.SubscriptionService",
      "continuity.v1.ServerInfoService",
    ]) {
      expect(services).toContain(name);
    }
    expect(await describeSymbol(address, "continuity.v1.StreamService")).toBeGreaterThan(0);
  });

  it("creates dev platforms and a 0600 server key on first start; their keys really work", async () => {
    const keyFile = join(dataDir, "server-key.jwk");
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    const privateKeyPath = join(dataDir, "dev-platforms", "demo-a.private.jwk");
    expect((await stat(privateKeyPath)).mode & 0o777).toBe(0o600);
    expect(server.stderr()).toContain(privateKeyPath);

    const jwk = JSON.parse(await readFile(privateKeyPath, "utf8")) as JWK;
    const now = Math.floor(Date.now() / 1000);
    const assertion = await new SignJWT({ iss: "demo-a", aud: "continuity", sub: "dev-user", iat: now, exp: now + 60, jti: randomUUID() })
      .setProtectedHeader({ alg: "ES256", typ: "continuity-assertion+jwt", kid: jwk.kid ?? "" })
      .sign(await importJWK(jwk, "ES256"));
    const channel = createChannel(address);
    try {
      const token = createClient(v1.TokenServiceDefinition, channel);
      const exchanged = await token.exchangeToken({
        grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
        subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
        subjectToken: assertion,
        scope: "",
        deviceId: "cli-test",
        deviceDisplayName: "",
      });
      expect(exchanged.platform).toBe("platforms/demo-a");
      session = { token: exchanged.accessToken, subject: exchanged.subject };

      // Logs: one JSON line per call with a request id; never a token or an assertion.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const lines = server
        .stderr()
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
      const call = lines.find((line) => line["method"] === "/continuity.v1.TokenService/ExchangeToken");
      expect(call).toMatchObject({ code: "OK", msg: "call" });
      expect(typeof call?.["requestId"]).toBe("string");
      expect(typeof call?.["durationMs"]).toBe("number");
      expect(server.stderr()).not.toContain(exchanged.accessToken);
      expect(server.stderr()).not.toContain(assertion.split(".")[1]);
    } finally {
      channel.close();
    }
  });

  it("serves Prometheus metrics on the metrics port", async () => {
    const ready = server
      .stderr()
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((line) => line["msg"] === "continuity server ready");
    const metricsAddress = String(ready?.["metrics"]);
    expect(metricsAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    // A refused call is counted by reason and logged with it.
    const channel = createChannel(address);
    const subjects = createClient(v1.SubjectServiceDefinition, channel);
    const bogusToken = "eyJhbGciOiJub25lIn0.e30.c2VjcmV0LXRva2VuLW1hcmtlcg";
    await expect(
      subjects.getSubject({ name: "subjects/x" }, { metadata: Metadata({ authorization: `Bearer ${bogusToken}` }) }),
    ).rejects.toThrow(/UNAUTHENTICATED/);
    channel.close();
    const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
    expect(text).toMatch(/continuity_rpc_duration_seconds_count\{method="\/grpc\.health\.v1\.Health\/Check",code="OK"\} \d+/);
    expect(text).toContain("continuity_active_subscribers");
    expect(text).toContain(
      'continuity_errors_total{method="/continuity.v1.SubjectService/GetSubject",code="UNAUTHENTICATED",reason="TOKEN_INVALID"} 1',
    );
    const refusedLine = server
      .stderr()
      .split("\n")
      .find((line) => line.includes("SubjectService/GetSubject"));
    expect(JSON.parse(refusedLine ?? "{}")).toMatchObject({ code: "UNAUTHENTICATED", reason: "TOKEN_INVALID" });
    expect(server.stderr()).not.toContain(bogusToken);
    expect((await fetch(`http://${metricsAddress}/other`)).status).toBe(404);
  });

  it("drains on SIGTERM: health turns NOT_SERVING, subscriptions end SHUTTING_DOWN, exit 0", async () => {
    const channel = createChannel(address);
    const health = createClient(HealthDefinition, channel);
    expect(session).toBeDefined();
    const subscriptions = createClientFactory()
      .use(errorDetailsClientMiddleware)
      .create(v1.SubscriptionServiceDefinition, channel);
    const live = (async () => {
      const metadata = Metadata({ authorization: `Bearer ${session!.token}` });
      try {
        for await (const _event of subscriptions.subscribe({ parent: session!.subject, cursor: "", heartbeatSeconds: 0 }, { metadata })) {
          // Ready and heartbeats until the server goes away.
        }
        return "ended without status";
      } catch (error) {
        if (!(error instanceof RichClientError)) return String(error);
        const info = error.extra.find((d): d is ErrorInfo => d.$type === ErrorInfo.$type);
        return `${Status[error.code]}/${info?.reason}`;
      }
    })();
    const abort = new AbortController();
    const seen: number[] = [];
    const watching = (async () => {
      try {
        for await (const update of health.watch({ service: "" }, { signal: abort.signal })) seen.push(update.status);
      } catch {
        // The stream may also end with the connection.
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 200));
    server.child.kill("SIGTERM");
    expect(await server.exited()).toBe(0);
    expect(await live).toBe("UNAVAILABLE/SHUTTING_DOWN");
    await watching;
    abort.abort();
    channel.close();
    expect(seen[0]).toBe(SERVING);
    expect(seen).toContain(NOT_SERVING);
    expect(server.stderr()).toContain('"msg":"stopped"');
  });
});

describe("server CLI refusals", () => {
  it("exits non-zero with one clear line naming a bad flag", async () => {
    const bad = spawnServer(["--durability", "fast"]);
    expect(await bad.exited()).toBe(2);
    expect(bad.stderr().trim()).toBe(
      'continuity-server: invalid --durability (CONTINUITY_DURABILITY): must be normal or full (got "fast")',
    );
    expect(bad.stdout()).toBe("");
  });

  it("refuses an unreadable platforms file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "continuity-cli-"));
    try {
      const missing = spawnServer([], {
        CONTINUITY_LISTEN: "127.0.0.1:0",
        CONTINUITY_DATA_DIR: dir,
        CONTINUITY_PLATFORMS: join(dir, "nope.json"),
      });
      expect(await missing.exited()).toBe(2);
      expect(missing.stderr().trim()).toMatch(/^continuity-server: invalid --platforms \(CONTINUITY_PLATFORMS\): cannot read platforms file .*nope\.json/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("prints help and exits 0", async () => {
    const help = spawnServer(["--help"]);
    expect(await help.exited()).toBe(0);
    expect(help.stdout()).toContain("--platforms <file>");
    expect(help.stdout()).toContain("CONTINUITY_LISTENING=");
  });

  it("prints help and exits 0 through `pnpm start -- --help`, which passes the `--` on", async () => {
    const child = spawn("npx", ["--yes", "pnpm@10.34.8", "start", "--", "--help"], {
      cwd: PACKAGE_DIR,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    child.stderr.resume();
    const [code] = (await once(child, "exit")) as [number | null];
    expect(out).toContain("src/main.ts -- --help");
    expect(out).toContain("--platforms <file>");
    expect(code).toBe(0);
  });
});
