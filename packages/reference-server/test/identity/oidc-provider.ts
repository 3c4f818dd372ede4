import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";

/** How the provider answers GET on its JWKS path. */
export type JwksMode = "serve" | "hang" | "error";

/** One signing key of the provider. */
export interface ProviderKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/**
 * A stand-in OpenID provider for tests: an HTTP server on 127.0.0.1:0 that serves a JWKS it
 * can change at any time (rotation), stall (a slow provider) or fail, counts the fetches,
 * and signs ID tokens with its keys. Only the JWKS is served: the server under test is
 * configured with its URL and never runs discovery.
 */
export interface TestOidcProvider {
  readonly issuer: string;
  readonly jwksUri: string;
  /** GET requests the JWKS path has received. */
  readonly fetches: number;
  mode: JwksMode;
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

export async function startTestOidcProvider(issuer = "https://idp.test.invalid"): Promise<TestOidcProvider> {
  const stalled: ServerResponse[] = [];
  const state = { fetches: 0, mode: "serve" as JwksMode, published: [] as ProviderKey[] };
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
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
    response.writeHead(200, { "content-type": "application/jwk-set+json" }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  let counter = 0;
  return {
    issuer,
    jwksUri: `http://127.0.0.1:${port}/jwks.json`,
    get fetches() {
      return state.fetches;
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
      for (const response of stalled) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
