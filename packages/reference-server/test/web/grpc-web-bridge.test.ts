import { connect as connectHttp2 } from "node:http2";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createChannel, createClientFactory, FetchTransport, Metadata, NodeHttpTransport, type Client } from "nice-grpc-web";
import { errorDetailsClientMiddleware } from "nice-grpc-error-details";
import { continuity } from "@continuity/sdk/gen";
import { failure, jsonBytes, startTestServer, type Session, type TestServer } from "../../src/testing/harness.js";

const v1 = continuity.v1;
const APP_ORIGIN = "http://app.example.test";

let server: TestServer;
let webAddress: string;
let ana: Session;

beforeEach(async () => {
  server = await startTestServer({ maintenanceIntervalMs: 0, limits: { maxBatchBytes: 64 * 1024, maxChunkBytes: 64 * 1024 } });
  webAddress = await server.server.listenGrpcWeb("127.0.0.1:0", { corsOrigins: [APP_ORIGIN] });
  ana = await server.signIn("course-a", "ana");
});
afterEach(async () => {
  await server.close();
});

/** nice-grpc-web clients — the library the SDK's web transport is built on — sending `token`. */
function webClients(token: string | undefined, wire = FetchTransport()) {
  const channel = createChannel(`http://${webAddress}`, wire);
  const factory = createClientFactory()
    .use(errorDetailsClientMiddleware)
    .use(async function* (call, options) {
      const metadata = Metadata(options.metadata);
      if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
      return yield* call.next(call.request, { ...options, metadata });
    });
  return {
    token: factory.create(v1.TokenServiceDefinition, channel),
    stream: factory.create(v1.StreamServiceDefinition, channel),
    subscription: factory.create(v1.SubscriptionServiceDefinition, channel) as Client<typeof v1.SubscriptionServiceDefinition>,
  };
}

async function createStream(session: Session, id: string): Promise<continuity.v1.Stream> {
  const { stream } = await session.clients.stream.createStream({
    parent: session.subject,
    streamId: id,
    stream: { type: "org.example.progress", encoding: v1.DeltaEncoding.DELTA_ENCODING_JSON_MERGE_PATCH, conflictPolicy: v1.ConflictPolicy.CONFLICT_POLICY_ALLOW_BLIND_APPEND },
  });
  return stream!;
}

describe("gRPC-web port", () => {
  it("carries unary calls both ways, the token exchange included, over fetch (HTTP/1.1)", async () => {
    const anonymous = webClients(undefined);
    const exchanged = await anonymous.token.exchangeToken({
      grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
      subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
      subjectToken: await server.platforms["course-a"]!.assertion("ana"),
      scope: "",
      deviceId: "browser-1",
      deviceDisplayName: "",
    });
    expect(exchanged.subject).toBe(ana.subject);
    const web = webClients(exchanged.accessToken);
    const stream = await createStream(ana, "progress");
    const appended = await web.stream.appendDeltas({ stream: stream.name, clientSequence: 1n, deltas: [{ payload: jsonBytes({ page: 3 }) }] });
    expect(appended.headVersion).toBe(1n);
    const { deltas } = await ana.clients.stream.listDeltas({ stream: stream.name });
    expect(Buffer.from(deltas[0]!.payload).toString("utf8")).toBe('{"page":3}');
  });

  it("streams Subscribe events as they happen, and an error carries its ErrorInfo", async () => {
    const web = webClients(ana.token, NodeHttpTransport());
    const controller = new AbortController();
    const iterator = web.subscription.subscribe({ parent: ana.subject, cursor: "", heartbeatSeconds: 0 }, { signal: controller.signal })[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.event?.$case).toBe("ready");
    const stream = await createStream(ana, "live");
    expect((await iterator.next()).value?.event?.$case).toBe("streamCreated");
    await ana.clients.stream.appendDeltas({ stream: stream.name, clientSequence: 1n, deltas: [{ payload: jsonBytes({ a: 1 }) }] });
    const appended = (await iterator.next()).value;
    expect(appended?.event?.$case === "deltasAppended" && appended.event.value.deltas.map((d: { version: bigint }) => d.version)).toEqual([1n]);
    // The browser going away cancels the call on the gRPC port, which releases the subscription.
    expect(server.server.deps.events.size).toBe(1);
    controller.abort();
    await expect.poll(() => server.server.deps.events.size, { timeout: 5_000 }).toBe(0);

    const cursorError = await failure(async () => {
      for await (const _ of web.subscription.subscribe({ parent: ana.subject, cursor: "not-a-cursor", heartbeatSeconds: 0 })) break;
    });
    expect(cursorError).toMatchObject({ code: "INVALID_ARGUMENT", reason: "INVALID_CURSOR" });
    const missing = await failure(webClients(ana.token).stream.getStream({ name: `${ana.subject}/streams/none` }));
    expect(missing).toMatchObject({ code: "NOT_FOUND", reason: "STREAM_NOT_FOUND" });
    const anonymous = await failure(webClients(undefined).stream.getStream({ name: `${ana.subject}/streams/none` }));
    expect(anonymous).toMatchObject({ code: "UNAUTHENTICATED", reason: "TOKEN_MISSING" });
  });

  it("answers HTTP/2 with prior knowledge (h2c) on the same port", async () => {
    const session = connectHttp2(`http://${webAddress}`);
    try {
      const request = v1.GetServerInfoRequest.encode({}).finish();
      const body = Buffer.concat([Buffer.from([0, 0, 0, 0, request.length]), request]);
      const call = session.request({ ":method": "POST", ":path": "/continuity.v1.ServerInfoService/GetServerInfo", "content-type": "application/grpc-web+proto" });
      const chunks: Buffer[] = [];
      call.on("data", (chunk: Buffer) => chunks.push(chunk));
      const responded = new Promise<Record<string, unknown>>((resolve) => call.once("response", resolve));
      const ended = new Promise((resolve) => call.once("end", resolve));
      call.end(body);
      const headers = await responded;
      await ended;
      expect(headers[":status"]).toBe(200);
      const response = Buffer.concat(chunks);
      const length = response.readUInt32BE(1);
      expect(response[0]).toBe(0);
      expect(v1.GetServerInfoResponse.decode(response.subarray(5, 5 + length)).implementation).toMatch(/^continuity-reference-server\//);
      const trailer = response.subarray(5 + length);
      expect(trailer[0]).toBe(0x80);
      expect(trailer.subarray(5).toString("latin1")).toContain("grpc-status: 0");
    } finally {
      session.close();
    }
  });

  it("answers CORS for the configured origins only, and exposes the status headers", async () => {
    const url = `http://${webAddress}/continuity.v1.ServerInfoService/GetServerInfo`;
    const preflight = await fetch(url, {
      method: "OPTIONS",
      headers: { origin: APP_ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type,x-grpc-web" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
    expect(preflight.headers.get("access-control-allow-headers")).toBe("authorization,content-type,x-grpc-web");
    const other = await fetch(url, { method: "OPTIONS", headers: { origin: "http://elsewhere.test", "access-control-request-method": "POST" } });
    expect(other.status).toBe(403);
    expect(other.headers.get("access-control-allow-origin")).toBeNull();

    const call = await fetch(url, { method: "POST", headers: { origin: APP_ORIGIN, "content-type": "application/grpc-web+proto" }, body: new Uint8Array(5) });
    expect(call.headers.get("access-control-allow-origin")).toBe(APP_ORIGIN);
    expect(call.headers.get("access-control-expose-headers")?.split(",")).toEqual(expect.arrayContaining(["grpc-status", "grpc-message", "grpc-status-details-bin"]));
  });

  it("refuses what gRPC-web cannot carry or the server would not take", async () => {
    const url = (path: string) => `http://${webAddress}${path}`;
    const trailerOf = async (response: Response) => Buffer.from(await response.arrayBuffer()).toString("latin1");
    const upload = await fetch(url("/continuity.v1.StreamService/UploadSnapshot"), { method: "POST", headers: { "content-type": "application/grpc-web+proto" }, body: new Uint8Array(5) });
    expect(await trailerOf(upload)).toContain(`grpc-status: ${12}`);
    const big = new Uint8Array(5 + 2 * 1024 * 1024);
    const tooLarge = await fetch(url("/continuity.v1.StreamService/AppendDeltas"), { method: "POST", headers: { "content-type": "application/grpc-web+proto" }, body: big });
    expect(await trailerOf(tooLarge)).toContain(`grpc-status: ${8}`);
    const torn = await fetch(url("/continuity.v1.ServerInfoService/GetServerInfo"), { method: "POST", headers: { "content-type": "application/grpc-web+proto" }, body: new Uint8Array([0, 0, 0, 0, 9, 1]) });
    expect(await trailerOf(torn)).toContain(`grpc-status: ${13}`);
    const unknown = await fetch(url("/continuity.v1.NoService/Nothing"), { method: "POST", headers: { "content-type": "application/grpc-web+proto" }, body: new Uint8Array(5) });
    expect(await trailerOf(unknown)).toContain(`grpc-status: ${12}`);
    const plain = await fetch(url("/continuity.v1.ServerInfoService/GetServerInfo"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(plain.status).toBe(415);
  });
});
