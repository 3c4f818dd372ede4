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
  /** GET requests its discovery document has received so far. */
  readonly discoveries: number;
  /** The keys its JWKS lists now, oldest first. */
  readonly published: readonly OidcKey[];
  /** `down`: its JWKS answers 503 (a provider in an outage). */
  mode: "serve" | "down";
  /** Publishes one more key (a rotation in progress). */
  addKey(alg?: OidcKey["alg"]): Promise<OidcKey>;
  /** Stops publishing a key (a rotation completed, or a key revoked). */
  withdraw(key: OidcKey): void;
  /** A key of the same kind that is never published (a forgery). */
  unpublishedKey(alg?: OidcKey["alg"]): Promise<OidcKey>;
  idToken(options: IdTokenOptions): Promise<string>;
}

/**
 * The identity providers of a spawn-mode run, on one loopback HTTP server: `main` serves its
 * keys, `rotating` is left to the rotation case alone (so its fetch count is that case's),
 * and `unreachable` accepts the request and never answers (a provider that hangs). The
 * misbehaving ones each serve one fault: `oversized` sends its keys and then 64 MiB of
 * whitespace, chunked; `crowded` publishes 101 keys; `trickling` sends headers and then a
 * space every 100 ms, never ending; `flaky` can go down and rotate keys while the run goes
 * on (its copy is refreshed after 1 s and trusted for 5 s). `paired` publishes two RS256
 * keys. `discovered` is configured with its issuer only, and serves a discovery document
 * at `{issuer}/.well-known/openid-configuration`; so does `impostor`, whose document names
 * `discovered`'s issuer.
 */
export interface OidcProvider {
  readonly main: OidcTenant;
  readonly rotating: OidcTenant;
  readonly unreachable: OidcTenant;
  readonly oversized: OidcTenant;
  readonly crowded: OidcTenant;
  readonly trickling: OidcTenant;
  readonly flaky: OidcTenant;
  readonly paired: OidcTenant;
  readonly discovered: OidcTenant;
  readonly impostor: OidcTenant;
  /** Bytes the `oversized` JWKS had sent when the last client of it went away (or all). */
  readonly oversizedBytesSent: number;
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
/** `flaky`'s refresh age and maximum staleness (TOKEN-028). */
export const SPAWN_FLAKY_REFRESH_MS = 1_000;
export const SPAWN_FLAKY_MAX_STALE_MS = 5_000;
/** What `oversized` sends after its keys. */
export const OVERSIZED_PADDING_BYTES = 64 * 1_048_576;

type Fault = "none" | "hang" | "oversized" | "crowded" | "trickling";

/**
 * Key pairs made in this process, per algorithm, in the order providers first asked for them.
 * A provider's n-th key of an algorithm is the n-th pair here: generating a provider's thirteen
 * RSA keys cost 2.4 s of CPU, paid again by every run in one process (the deliberate-fault run
 * starts one per mutant, 162 in CI), so each pair is made once. Within one provider every key is
 * still a different pair (the attacker's key and a rotation's new key are never a published
 * one), each draw gets a fresh `kid`, and no pair outlives the process or is written anywhere:
 * servers of other runs trusting the same pair share nothing with this one.
 */
const keyPairs: Record<OidcKey["alg"], Promise<CryptoKeyPair>[]> = { RS256: [], ES256: [] };

type CryptoKeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

/** A provider's source of keys: each call a pair this provider has not used yet. */
function keySource(): (alg: OidcKey["alg"]) => Promise<OidcKey> {
  const drawn: Record<OidcKey["alg"], number> = { RS256: 0, ES256: 0 };
  return async (alg) => {
    const pairs = keyPairs[alg];
    const index = drawn[alg]++;
    if (index === pairs.length) pairs.push(generateKeyPair(alg, { extractable: true }));
    const { publicKey, privateKey } = await pairs[index]!;
    const kid = `oidc-${randomUUID().slice(0, 8)}`;
    return { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
  };
}

/** Writes `body`, then whitespace, heeding backpressure, until done or the client is gone. */
async function sendOversized(response: ServerResponse, body: string, sent: (bytes: number) => void): Promise<void> {
  response.writeHead(200, { "content-type": "application/jwk-set+json", "cache-control": "no-store" });
  let closed = false;
  response.once("close", () => (closed = true));
  let bytes = Buffer.byteLength(body);
  response.write(body);
  const chunk = Buffer.alloc(65_536, 0x20);
  while (!closed && bytes < OVERSIZED_PADDING_BYTES) {
    bytes += chunk.length;
    if (!response.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          response.off("drain", done).off("close", done);
          resolve();
        };
        response.on("drain", done).on("close", done);
      });
    }
  }
  sent(bytes);
  if (!closed) response.end();
}

/** Starts the providers on 127.0.0.1:0 with one fresh RS256 key each. */
export async function startOidcProvider(): Promise<OidcProvider> {
  const newKey = keySource();
  interface Route {
    readonly keys: OidcKey[];
    readonly fault: Fault;
    mode: "serve" | "down";
    fetches: number;
  }
  const routes = new Map<string, Route>();
  /** Discovery documents by path, with their fetch counts. */
  const documents = new Map<string, { readonly document: object; fetches: number }>();
  const stalled: ServerResponse[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let oversizedBytesSent = 0;
  const server = createServer((request, response) => {
    const path = request.url ?? "";
    const discovery = documents.get(path);
    if (request.method === "GET" && discovery !== undefined) {
      discovery.fetches += 1;
      response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(discovery.document));
      return;
    }
    const route = routes.get(path);
    if (request.method !== "GET" || route === undefined) {
      response.writeHead(404).end();
      return;
    }
    route.fetches += 1;
    if (route.fault === "hang") {
      stalled.push(response);
      return;
    }
    if (route.mode === "down") {
      response.writeHead(503).end();
      return;
    }
    const published = route.keys.map((key) => key.publicJwk);
    // 100 more copies of its key under other kids: a key set too big to take, yet valid.
    const keys = route.fault === "crowded" ? [...published, ...Array.from({ length: 100 }, (_, i) => ({ ...published[0], kid: `crowd-${i}` }))] : published;
    const body = JSON.stringify({ keys });
    if (route.fault === "oversized") {
      void sendOversized(response, body, (bytes) => (oversizedBytesSent = bytes));
      return;
    }
    if (route.fault === "trickling") {
      response.writeHead(200, { "content-type": "application/jwk-set+json" });
      stalled.push(response);
      const timer = setInterval(() => (response.destroyed ? clearInterval(timer) : response.write(" ")), 100);
      timers.add(timer);
      return;
    }
    response.writeHead(200, { "content-type": "application/jwk-set+json", "cache-control": "no-store" }).end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  interface TenantOptions {
    readonly fault?: Fault;
    readonly keyCount?: number;
    /** Configured with its issuer only; its document names `documentIssuer` (default: its own). */
    readonly discovery?: { readonly documentIssuer?: string };
    readonly settings?: Record<string, number>;
  }
  const entries: object[] = [];

  async function tenant(name: string, platformId: string, issuer: string, options: TenantOptions = {}): Promise<OidcTenant> {
    const path = `/${name}/jwks.json`;
    const keys: OidcKey[] = [];
    for (let i = 0; i < (options.keyCount ?? 1); i++) keys.push(await newKey("RS256"));
    const route: Route = { keys, fault: options.fault ?? "none", mode: "serve", fetches: 0 };
    routes.set(path, route);
    const clientId = `${platformId}-client`;
    const jwksUri = `${origin}${path}`;
    const discoveryPath = options.discovery === undefined ? undefined : `${new URL(issuer).pathname.replace(/\/$/, "")}/.well-known/openid-configuration`;
    if (discoveryPath !== undefined) {
      documents.set(discoveryPath, { document: { issuer: options.discovery?.documentIssuer ?? issuer, jwks_uri: jwksUri, id_token_signing_alg_values_supported: ["RS256"] }, fetches: 0 });
    }
    entries.push({
      id: platformId,
      displayName: `Conformance OIDC (${platformId})`,
      oidc: {
        issuer,
        clientId,
        ...(discoveryPath === undefined ? { jwksUri } : {}),
        jwksTimeoutMs: SPAWN_JWKS_TIMEOUT_MS,
        jwksCooldownMs: SPAWN_JWKS_COOLDOWN_MS,
        ...options.settings,
      },
      scopes: ["state.read", "state.write", "identity.manage"],
    });
    return {
      platformId,
      issuer,
      clientId,
      jwksUri,
      get fetches() {
        return route.fetches;
      },
      get discoveries() {
        return discoveryPath === undefined ? 0 : (documents.get(discoveryPath)?.fetches ?? 0);
      },
      get published() {
        return [...keys];
      },
      get mode() {
        return route.mode;
      },
      set mode(mode) {
        route.mode = mode;
      },
      async addKey(alg = "RS256") {
        const key = await newKey(alg);
        keys.push(key);
        return key;
      },
      withdraw(key) {
        const at = keys.indexOf(key);
        if (at !== -1) keys.splice(at, 1);
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
  const unreachable = await tenant("unreachable", "conformance-oidc-down", "https://down.oidc.conformance.invalid", { fault: "hang" });
  const oversized = await tenant("oversized", "conformance-oidc-oversized", "https://oversized.oidc.conformance.invalid", { fault: "oversized" });
  const crowded = await tenant("crowded", "conformance-oidc-crowded", "https://crowded.oidc.conformance.invalid", { fault: "crowded" });
  const trickling = await tenant("trickling", "conformance-oidc-trickling", "https://trickling.oidc.conformance.invalid", { fault: "trickling" });
  const flaky = await tenant("flaky", "conformance-oidc-flaky", "https://flaky.oidc.conformance.invalid", {
    settings: { jwksRefreshMs: SPAWN_FLAKY_REFRESH_MS, jwksMaxStaleMs: SPAWN_FLAKY_MAX_STALE_MS },
  });
  const paired = await tenant("paired", "conformance-oidc-paired", "https://paired.oidc.conformance.invalid", { keyCount: 2 });
  // Discovery fetches from the issuer itself, so these two issuers are loopback URLs.
  const discovered = await tenant("discovered", "conformance-oidc-discovered", `${origin}/discovered`, { discovery: {} });
  const impostor = await tenant("impostor", "conformance-oidc-impostor", `${origin}/impostor`, { discovery: { documentIssuer: discovered.issuer } });
  const attackerKey = await newKey("RS256");
  routes.set("/attacker/jwks.json", { keys: [attackerKey], fault: "none", mode: "serve", fetches: 0 });

  return {
    main,
    rotating,
    unreachable,
    oversized,
    crowded,
    trickling,
    flaky,
    paired,
    discovered,
    impostor,
    get oversizedBytesSent() {
      return oversizedBytesSent;
    },
    attackerJwksUri: `${origin}/attacker/jwks.json`,
    attackerKey,
    platformEntries: () => entries,
    async close() {
      for (const timer of timers) clearInterval(timer);
      for (const response of stalled) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
