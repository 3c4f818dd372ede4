import { randomBytes, randomUUID } from "node:crypto";
import { importJWK, SignJWT, type JWTPayload } from "jose";
import type { continuity } from "@continuity/sdk/gen";
import type { PlatformKey, PlatformKeySet } from "../fixtures/platform-keys.js";
import type { ProfileName } from "./define-case.js";
import type { OidcProvider } from "./oidc-provider.js";
import { createClientPool, type ClientPool, type Clients } from "./clients.js";
import { CaseSkipped, check } from "./expect.js";
import type { TraceLog } from "./trace.js";
import type { ChannelCredentials } from "@grpc/grpc-js";

/** The token-exchange constants of RFC 8693 that ExchangeToken requires. */
export const TOKEN_EXCHANGE = {
  grantType: "urn:ietf:params:oauth:grant-type:token-exchange",
  subjectTokenType: "urn:ietf:params:oauth:token-type:jwt",
  idTokenType: "urn:ietf:params:oauth:token-type:id_token",
} as const;

/** A signed-in device of a subject, as a case uses it. */
export interface Session {
  readonly token: string;
  /** `subjects/{subject}` */
  readonly subject: string;
  /** `subjects/{subject}/devices/{device}`, empty for unbound tokens. */
  readonly device: string;
  readonly deviceId: string;
  readonly platform: PlatformKey;
  readonly accountId: string;
  readonly clients: Clients;
  readonly exchange: continuity.v1.ExchangeTokenResponse;
}

/** Claims and header overrides for a hand-made assertion (for negative cases). */
export interface AssertionOptions {
  readonly platform: PlatformKey;
  readonly accountId: string;
  readonly audience?: string;
  readonly issuer?: string;
  readonly typ?: string;
  readonly issuedAt?: number;
  readonly expiresAt?: number;
  /** Sign with this key instead of the platform's (a forged assertion). */
  readonly signingJwk?: PlatformKey["privateJwk"];
}

/** How a case asks for a session. */
export interface SessionOptions {
  readonly platform?: PlatformKey;
  /** Reuse an account id (same subject) — e.g. a second device. Fresh when absent. */
  readonly accountId?: string;
  /** Device id; fresh when absent; `null` for a token not bound to a device. */
  readonly deviceId?: string | null;
  readonly scope?: string;
}

/** Restart options for cases that need the suite to own the server process. */
export interface RestartOptions {
  /** Start on an empty data directory (a new store epoch). */
  readonly wipeData: boolean;
  /** Stop with SIGKILL instead of SIGTERM, to prove durability of acknowledged writes. */
  readonly kill: boolean;
}

/** What the runner knows about the server under test, shared by every case. */
export interface TargetView {
  readonly address: () => string;
  /** Credentials for a new channel to the target (or a sibling): plaintext or TLS, as the run was told. */
  readonly credentials: () => ChannelCredentials;
  readonly info: continuity.v1.GetServerInfoResponse;
  readonly platforms: PlatformKeySet;
  readonly audience: string;
  readonly restart: ((options: RestartOptions) => Promise<void>) | undefined;
  readonly claimedProfiles: readonly ProfileName[];
  readonly spawnSibling: ((env?: Readonly<Record<string, string>>) => Promise<SiblingServer>) | undefined;
  readonly oidc?: OidcProvider | undefined;
}

/** A second server started for one case; stopped when the case ends. */
export interface SiblingServer {
  readonly address: string;
  stop(): Promise<void>;
}

/** Everything a case gets. One per case run; its channels close when the case ends. */
export interface CaseContext {
  readonly signal: AbortSignal;
  readonly info: continuity.v1.GetServerInfoResponse;
  readonly limits: continuity.v1.Limits;
  readonly platforms: PlatformKeySet;
  readonly audience: string;
  /** Profiles the run checks (from --profile, or ServerInfo when not given). */
  readonly claimedProfiles: readonly ProfileName[];
  /** host:port of the server right now (changes after a restart). */
  address(): string;
  /** Credentials for a channel of the case's own to the server (plaintext or TLS, as the run dials it). */
  credentials(): ChannelCredentials;
  /** Clients with no token, or with any token string. */
  clients(token?: string): Clients;
  mintAssertion(options: AssertionOptions): Promise<string>;
  /** Exchanges a fresh assertion; a new account id means a new subject. */
  session(options?: SessionOptions): Promise<Session>;
  /** The OpenID providers the server trusts (declare needs: ["oidc-provider"]). */
  oidcProvider(): OidcProvider;
  /** A unique, id-safe name for streams, accounts and devices of this case. */
  uniqueId(prefix: string): string;
  /** Ends the case as `skip` with a reason (the server offers no way to check this). */
  skip(reason: string): never;
  /** Adds a line of evidence to the case's report, shown on failure. */
  note(text: string): void;
  restartServer(options: RestartOptions): Promise<void>;
  /** Whether `startSecondServer` can work here (spawn mode), for cases that use it only when needed. */
  readonly canStartSecondServer: boolean;
  /**
   * Starts a second server (declare needs: ["second-server"]); its clients trace into this
   * case. `env` is added to the runner contract's environment of that server only.
   */
  startSecondServer(env?: Readonly<Record<string, string>>): Promise<{ address: string; clients(token?: string): Clients }>;
  readonly trace: TraceLog;
}

/** Internal: what the runner needs to dispose of a context. */
export interface OwnedCaseContext extends CaseContext {
  readonly notes: string[];
  dispose(): Promise<void>;
}

/** Builds the context of one case run. */
export function createCaseContext(target: TargetView, trace: TraceLog, signal: AbortSignal): OwnedCaseContext {
  const notes: string[] = [];
  const siblings: { server: SiblingServer; pool: ClientPool }[] = [];
  let pool: ClientPool | undefined;
  let poolAddress = "";
  const currentPool = (): ClientPool => {
    const address = target.address();
    if (pool === undefined || poolAddress !== address) {
      pool?.close();
      pool = createClientPool(address, trace, signal, target.credentials());
      poolAddress = address;
    }
    return pool;
  };
  const limits = target.info.limits;
  check(limits !== undefined, "GetServerInfo must return limits");

  const ctx: OwnedCaseContext = {
    signal,
    info: target.info,
    limits,
    platforms: target.platforms,
    audience: target.audience,
    claimedProfiles: target.claimedProfiles,
    canStartSecondServer: target.spawnSibling !== undefined,
    trace,
    notes,
    address: target.address,
    credentials: target.credentials,
    clients: (token) => currentPool().clients(token),
    mintAssertion: (options) => mintAssertion(options, target.audience),
    async session(options = {}) {
      const platform = options.platform ?? target.platforms.a;
      const accountId = options.accountId ?? ctx.uniqueId("acct");
      const deviceId = options.deviceId === null ? "" : (options.deviceId ?? ctx.uniqueId("dev"));
      const assertion = await mintAssertion({ platform, accountId }, target.audience);
      const exchange = await ctx.clients().tokens.exchangeToken({
        grantType: TOKEN_EXCHANGE.grantType,
        subjectToken: assertion,
        subjectTokenType: TOKEN_EXCHANGE.subjectTokenType,
        scope: options.scope ?? "",
        deviceId,
        deviceDisplayName: `conformance ${deviceId}`,
      });
      check(exchange.accessToken !== "", "ExchangeToken must return an access token");
      check(/^subjects\/[^/]+$/.test(exchange.subject), `ExchangeToken.subject must be subjects/{subject}, got "${exchange.subject}"`);
      return {
        token: exchange.accessToken,
        subject: exchange.subject,
        device: exchange.device,
        deviceId,
        platform,
        accountId,
        clients: ctx.clients(exchange.accessToken),
        exchange,
      };
    },
    oidcProvider() {
      if (target.oidc === undefined) throw new Error("oidcProvider needs spawn mode; declare needs: [\"oidc-provider\"]");
      return target.oidc;
    },
    uniqueId(prefix) {
      return `${prefix}-${randomBytes(6).toString("hex")}`;
    },
    note(text) {
      notes.push(text);
    },
    skip(reason) {
      throw new CaseSkipped(reason);
    },
    async restartServer(options) {
      if (target.restart === undefined) throw new Error("restartServer needs spawn mode; declare needs: [\"restart\"]");
      pool?.close();
      pool = undefined;
      await target.restart(options);
    },
    async startSecondServer(env) {
      if (target.spawnSibling === undefined) throw new Error("startSecondServer needs spawn mode; declare needs: [\"second-server\"]");
      const server = await target.spawnSibling(env);
      const siblingPool = createClientPool(server.address, trace, signal, target.credentials());
      siblings.push({ server, pool: siblingPool });
      return { address: server.address, clients: (token) => siblingPool.clients(token) };
    },
    async dispose() {
      pool?.close();
      pool = undefined;
      for (const sibling of siblings) sibling.pool.close();
      await Promise.all(siblings.map((sibling) => sibling.server.stop()));
    },
  };
  return ctx;
}

/**
 * Signs a platform assertion as the design note defines it. Negative cases override any
 * header or claim, or sign with a key the server does not trust.
 */
export async function mintAssertion(options: AssertionOptions, audience: string): Promise<string> {
  const jwk = options.signingJwk ?? options.platform.privateJwk;
  const key = await importJWK(jwk, "ES256");
  const now = Math.floor(Date.now() / 1000);
  const issuedAt = options.issuedAt ?? now;
  const claims: JWTPayload = { jti: randomUUID() };
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "ES256", typ: options.typ ?? "continuity-assertion+jwt", kid: jwk.kid ?? options.platform.kid })
    .setIssuer(options.issuer ?? options.platform.id)
    .setAudience(options.audience ?? audience)
    .setSubject(options.accountId)
    .setIssuedAt(issuedAt)
    .setExpirationTime(options.expiresAt ?? issuedAt + 120)
    .sign(key);
}
