// The gRPC-web port of a server that serves TLS: HTTPS with HTTP/2 or HTTP/1.1 by ALPN, with
// the server's own certificate, forwarding to its TLS gRPC port. Certificates are made at test time.
import { mkdtemp, rm } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { connect as connectHttp2 } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { continuity } from "@continuity/sdk/gen";
import { spawnServer, type ServerProcess } from "../ops/server-process.js";
import { createTestCertificates, type TestCertificates } from "../ops/tls-certificates.js";

const v1 = continuity.v1;
let scratch: string;
let certs: TestCertificates;
let server: ServerProcess;
let webPort: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "continuity-grpc-web-tls-"));
  certs = await createTestCertificates(scratch);
  server = spawnServer(
    ["--listen", "127.0.0.1:0", "--data-dir", join(scratch, "data"), "--log-level", "warn", "--tls-cert", certs.serverCertFile, "--tls-key", certs.serverKeyFile, "--grpc-web-listen", "127.0.0.1:0"],
    { CONTINUITY_PLATFORMS: undefined },
  );
  await server.ready();
  const line = /^CONTINUITY_GRPC_WEB_LISTENING=127\.0\.0\.1:(\d+)$/m.exec(server.stdout());
  webPort = line?.[1] ?? "";
});
afterAll(async () => {
  server?.kill();
  await rm(scratch, { recursive: true, force: true });
});

const getServerInfo = Buffer.concat([Buffer.from([0, 0, 0, 0, v1.GetServerInfoRequest.encode({}).finish().length]), v1.GetServerInfoRequest.encode({}).finish()]);

/** The implementation name in a gRPC-web response body, and its trailer frame. */
function decode(body: Buffer): { implementation: string; trailer: string } {
  const length = body.readUInt32BE(1);
  return { implementation: v1.GetServerInfoResponse.decode(body.subarray(5, 5 + length)).implementation, trailer: body.subarray(10 + length).toString("latin1") };
}

it("answers gRPC-web over HTTPS with HTTP/2, through the TLS gRPC port", async () => {
  expect(webPort).toMatch(/^\d+$/);
  const session = connectHttp2(`https://localhost:${webPort}`, { ca: certs.ca });
  try {
    const call = session.request({ ":method": "POST", ":path": "/continuity.v1.ServerInfoService/GetServerInfo", "content-type": "application/grpc-web+proto" });
    const chunks: Buffer[] = [];
    call.on("data", (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => call.once("end", resolve));
    call.end(getServerInfo);
    await ended;
    const { implementation, trailer } = decode(Buffer.concat(chunks));
    expect(implementation).toMatch(/^continuity-reference-server\//);
    expect(trailer).toContain("grpc-status: 0");
  } finally {
    session.close();
  }
});

it("answers gRPC-web over HTTPS with HTTP/1.1", async () => {
  const body = await new Promise<Buffer>((resolve, reject) => {
    const req = httpsRequest(
      { host: "localhost", port: Number(webPort), method: "POST", path: "/continuity.v1.ServerInfoService/GetServerInfo", ca: certs.ca, headers: { "content-type": "application/grpc-web+proto" } },
      (res) => {
        expect(res.httpVersion).toBe("1.1");
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve(Buffer.concat(chunks)));
      },
    );
    req.on("error", reject);
    req.end(getServerInfo);
  });
  expect(decode(body).implementation).toMatch(/^continuity-reference-server\//);
});
