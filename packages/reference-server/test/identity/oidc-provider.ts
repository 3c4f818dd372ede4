import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";

/**
 * How the provider answers GET on its JWKS path: its keys; never; 503; its keys followed by
 * whitespace up to 64 MiB, chunked or with a content-length; its keys a byte every 100 ms.
 */
export type JwksMode = "serve" | "hang" | "error" | "huge-chunked" | "huge-declared" | "slow-body";

/** One signing key of the provider. */
export interface ProviderKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/**
 * A stand-in OpenID provider for tests: an HTTP server on 127.0.0.1:0 that serves a JWKS it
 * can change at any time (rotation), stall (a slow provider), fail, bloat or trickle, counts
 * the fetches, and signs ID tokens with its keys. It also serves a discovery document naming
 * its issuer and JWKS URL, which a test can change.
 */
export interface TestOidcProvider {
  readonly issuer: string;
  /** `http://127.0.0.1:{port}`; its discovery document is at `/.well-known/openid-configuration`. */
  readonly origin: string;
  readonly jwksUri: string;
  /** GET requests the JWKS path has received. */
  readonly fetches: number;
  /** GET requests the discovery document has received. */
  readonly discoveries: number;
  /** Bytes of the last huge answer written before the client went away (or all of them). */
  readonly hugeBytesSent: number;
  mode: JwksMode;
  /** What the discovery document says; by default the provider's issuer and JWKS URL. */
  discovery: { issuer?: string; jwks_uri?: string };
  /** Keys in the published JWKS, newest last. */
  published: ProviderKey[];
  newKey(alg?: "RS256" | "ES256"): Promise<ProviderKey>;
  /** A signed ID token; `claims` and `header` override the defaults, `undefined` drops one. */
  idToken(options: {
    key: ProviderKey;
    sub: string;
    audience: string | string[];
    claims?: Record<string, unknown>;
    header?: Record<string, unknown>;
  }): Promise<string>;
  close(): Promise<void>;
}

const HUGE_BYTES = 64 * 1_048_576;

/** Writes `body` then whitespace up to 64 MiB, heeding backpressure, and records how much went out. */
async function sendHuge(response: ServerResponse, body: string, declared: boolean, sent: (bytes: number) => void): Promise<void> {
  response.writeHead(200, { "content-type": "application/jwk-set+json", ...(declared ? { "content-length": String(HUGE_BYTES) } : {}) });
  let bytes = Buffer.byteLength(body);
  response.write(body);
  const chunk = Buffer.alloc(65_536, 0x20);
  let closed = false;
  response.once("close", () => (closed = true));
  while (!closed && bytes + chunk.length <= HUGE_BYTES) {
    bytes += chunk.length;
    if (!response.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          response.off("drain", done);
          response.off("close", done);
          resolve();
        };
        response.on("drain", done).on("close", done);
      });
    }
  }
  sent(bytes);
  if (!closed) response.end(" ".repeat(HUGE_BYTES - bytes));
}

export async function startTestOidcProvider(issuer: string | "self" = "https://idp.test.invalid"): Promise<TestOidcProvider> {
  const stalled: ServerResponse[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const state = { fetches: 0, discoveries: 0, hugeBytesSent: 0, mode: "serve" as JwksMode, published: [] as ProviderKey[], discovery: {} as { issuer?: string; jwks_uri?: string } };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    if (request.method === "GET" && request.url === "/.well-known/openid-configuration") {
      state.discoveries += 1;
      const document = { issuer: self.issuer, jwks_uri: self.jwksUri, id_token_signing_alg_values_supported: ["RS256", "ES256"], ...state.discovery };
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(document));
      return;
    }
    if (request.method !== "GET" || request.url !== "/jwks.json") {
      response.writeHead(404).end();
      return;
    }
    state.fetches += 1;
    if (state.mode === "hang") {
      stalled.push(response);
      return;
    }
    if (state.mode === "error") {
      response.writeHead(503).end();
      return;
    }
    const body = JSON.stringify({ keys: state.published.map((key) => key.publicJwk) });
    if (state.mode === "huge-chunked" || state.mode === "huge-declared") {
      void sendHuge(response, body, state.mode === "huge-declared", (bytes) => (state.hugeBytesSent = bytes));
      return;
    }
    if (state.mode === "slow-body") {
      response.writeHead(200, { "content-type": "application/jwk-set+json" });
      stalled.push(response);
      let at = 0;
      const timer = setInterval(() => {
        if (at >= body.length || response.destroyed) {
          clearInterval(timer);
          response.end();
          return;
        }
        response.write(body[at++]!);
      }, 100);
      timers.add(timer);
      return;
    }
    response.writeHead(200, { "content-type": "application/jwk-set+json" }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const self = { issuer: issuer === "self" ? origin : issuer, jwksUri: `${origin}/jwks.json` };
  issuer = self.issuer;
  let counter = 0;
  return {
    issuer,
    origin,
    jwksUri: self.jwksUri,
    get fetches() {
      return state.fetches;
    },
    get discoveries() {
      return state.discoveries;
    },
    get hugeBytesSent() {
      return state.hugeBytesSent;
    },
    get discovery() {
      return state.discovery;
    },
    set discovery(discovery) {
      state.discovery = discovery;
    },
    get mode() {
      return state.mode;
    },
    set mode(mode) {
      state.mode = mode;
    },
    get published() {
      return state.published;
    },
    set published(keys) {
      state.published = keys;
    },
    async newKey(alg = "RS256") {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
      counter += 1;
      const kid = `key-${counter}`;
      return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
    },
    async idToken({ key, sub, audience, claims = {}, header = {} }) {
      const now = Math.floor(Date.now() / 1000);
      const body: Record<string, unknown> = { iss: issuer, sub, aud: audience, iat: now, exp: now + 3600, nonce: "n-1", ...claims };
      const protectedHeader: Record<string, unknown> = { alg: key.publicJwk.alg, kid: key.kid, typ: "JWT", ...header };
      for (const [name, value] of Object.entries(body)) if (value === undefined) delete body[name];
      for (const [name, value] of Object.entries(protectedHeader)) if (value === undefined) delete protectedHeader[name];
      return new SignJWT(body).setProtectedHeader(protectedHeader as { alg: string }).sign(key.privateKey);
    },
    async close() {
      for (const timer of timers) clearInterval(timer);
      for (const response of stalled) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
