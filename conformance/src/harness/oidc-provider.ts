import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";

/** One signing key of a test provider. */
export interface OidcKey {
  readonly kid: string;
  readonly alg: "RS256" | "ES256";
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

/** What an ID token says; `undefined` drops a claim or header member, for negative cases. */
export interface IdTokenOptions {
  readonly sub: string;
  /** Default: the tenant's client id. */
  readonly audience?: string | string[];
  /** Default: the tenant's first published key. */
  readonly key?: OidcKey;
  readonly claims?: Record<string, unknown>;
  readonly header?: Record<string, unknown>;
}

/**
 * One OpenID provider (one issuer) the spawned server trusts for one platform. Its JWKS is
 * served at `jwksUri`, counted, and can be changed while the server runs (rotation).
 */
export interface OidcTenant {
  readonly platformId: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly jwksUri: string;
  /** GET requests its JWKS has received so far. */
  readonly fetches: number;
  /** Publishes one more key (a rotation in progress). */
  addKey(alg?: OidcKey["alg"]): Promise<OidcKey>;
  /** A key of the same kind that is never published (a forgery). */
  unpublishedKey(alg?: OidcKey["alg"]): Promise<OidcKey>;
  idToken(options: IdTokenOptions): Promise<string>;
}

/**
 * The identity providers of a spawn-mode run, on one loopback HTTP server: `main` serves its
 * keys, `rotating` is left to the rotation case alone (so its fetch count is that case's),
 * and `unreachable` accepts the request and never answers (a provider that hangs).
 * Only JWKS documents are served; the server under test is given their URLs and runs no
 * discovery.
 */
export interface OidcProvider {
  readonly main: OidcTenant;
  readonly rotating: OidcTenant;
  readonly unreachable: OidcTenant;
  /** A JWKS of keys no platform trusts, for `jku` injection attempts. */
  readonly attackerJwksUri: string;
  readonly attackerKey: OidcKey;
  /** The `platforms` entries a spawned server is configured with. */
  platformEntries(): object[];
  close(): Promise<void>;
}

/** How long the suite asks a spawned server to wait for a JWKS, and between refetches for unknown kids. */
export const SPAWN_JWKS_TIMEOUT_MS = 2_000;
export const SPAWN_JWKS_COOLDOWN_MS = 1_000;

async function newKey(alg: OidcKey["alg"]): Promise<OidcKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `oidc-${randomUUID().slice(0, 8)}`;
  return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

/** Starts the providers on 127.0.0.1:0 with one fresh RS256 key each. */
export async function startOidcProvider(): Promise<OidcProvider> {
  const published = new Map<string, OidcKey[]>();
  const fetches = new Map<string, number>();
  const hanging = new Set<string>(["/unreachable/jwks.json"]);
  const stalled: ServerResponse[] = [];
  const server = createServer((request, response) => {
    const path = request.url ?? "";
    const keys = published.get(path);
    if (request.method !== "GET" || keys === undefined) {
      response.writeHead(404).end();
      return;
    }
    fetches.set(path, (fetches.get(path) ?? 0) + 1);
    if (hanging.has(path)) {
      stalled.push(response);
      return;
    }
    response
      .writeHead(200, { "content-type": "application/jwk-set+json", "cache-control": "no-store" })
      .end(JSON.stringify({ keys: keys.map((key) => key.publicJwk) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  async function tenant(name: string, platformId: string, issuer: string): Promise<OidcTenant> {
    const path = `/${name}/jwks.json`;
    const keys = [await newKey("RS256")];
    published.set(path, keys);
    const clientId = `${platformId}-client`;
    return {
      platformId,
      issuer,
      clientId,
      jwksUri: `${origin}${path}`,
      get fetches() {
        return fetches.get(path) ?? 0;
      },
      async addKey(alg = "RS256") {
        const key = await newKey(alg);
        keys.push(key);
        return key;
      },
      unpublishedKey: (alg = "RS256") => newKey(alg),
      async idToken(options) {
        const key = options.key ?? keys[0]!;
        const now = Math.floor(Date.now() / 1000);
        const claims: Record<string, unknown> = {
          iss: issuer,
          sub: options.sub,
          aud: options.audience ?? clientId,
          iat: now,
          exp: now + 600,
          nonce: randomUUID(),
          ...options.claims,
        };
        const header: Record<string, unknown> = { alg: key.alg, kid: key.kid, typ: "JWT", ...options.header };
        for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
        for (const [name, value] of Object.entries(header)) if (value === undefined) delete header[name];
        return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key.privateKey);
      },
    };
  }

  const main = await tenant("main", "conformance-oidc", "https://oidc.conformance.invalid");
  const rotating = await tenant("rotating", "conformance-oidc-rotating", "https://rotating.oidc.conformance.invalid");
  const unreachable = await tenant("unreachable", "conformance-oidc-down", "https://down.oidc.conformance.invalid");
  const attackerKey = await newKey("RS256");
  published.set("/attacker/jwks.json", [attackerKey]);

  return {
    main,
    rotating,
    unreachable,
    attackerJwksUri: `${origin}/attacker/jwks.json`,
    attackerKey,
    platformEntries: () =>
      [main, rotating, unreachable].map((t) => ({
        id: t.platformId,
        displayName: `Conformance OIDC (${t.platformId})`,
        oidc: {
          issuer: t.issuer,
          clientId: t.clientId,
          jwksUri: t.jwksUri,
          jwksTimeoutMs: SPAWN_JWKS_TIMEOUT_MS,
          jwksCooldownMs: SPAWN_JWKS_COOLDOWN_MS,
        },
        scopes: ["state.read", "state.write", "identity.manage"],
      })),
    async close() {
      for (const response of stalled) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
