/**
 * A connection to one Continuity server, and signing in to it as a platform on behalf of one
 * account: GetServerInfo for the assertion audience (and the bundle signing keys), then an
 * assertion signed with the platform's key, exchanged for an access token with scope
 * `identity.manage` (RFC 8693 token exchange). The token is not bound to a device: the CLI
 * acts for the person, and must not appear among their devices in the bundle it exports.
 */
import { createAssertionTokenProvider, createContinuityClient, PROTOCOL_VERSION, type ContinuityClient, type TokenProvider, type v1 } from "@continuity/sdk";
import { asCallProblem, CliError, calling, EXIT_USAGE } from "../errors.js";
import { loadPlatformKey, signAssertion } from "./platform-key.js";
import { createRawPortabilityClient, type RawPortabilityClient } from "./raw-portability.js";

/** The scope export, import and migration need. */
export const IDENTITY_MANAGE = "identity.manage";
const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt";
/** Deadline of each unary call (ServerInfo, token exchange, migration calls). */
const CALL_DEADLINE_MS = 10_000;

/** A server the CLI talks to, before or without signing in. */
export interface ServerConnection {
  /** `host:port` as given. */
  readonly address: string;
  readonly info: v1.GetServerInfoResponse;
  /** Unary calls: deadline, retries of safe calls, error details, the token when signed in. */
  readonly client: ContinuityClient;
  close(): void;
}

/** Who to sign in as; the flag names are for messages (`--platform-key` or `--source-platform-key`). */
export interface SignInOptions {
  readonly address: string | undefined;
  readonly platformId: string | undefined;
  readonly platformKeyFile: string | undefined;
  readonly accountId: string | undefined;
  /** `""` for the main server, `"source-"` for a migration's source. */
  readonly flagPrefix: string;
}

/** A server signed in to as one account of one platform. */
export interface SignedInServer extends ServerConnection {
  /** `subjects/{subject}` the token acts for. */
  readonly subject: string;
  /** `platforms/{platform}`. */
  readonly platform: string;
  /** A valid access token, refreshed when it nears expiry. */
  accessToken(): Promise<string>;
  /** Headers of a byte-level call: the token and the protocol version. */
  callMetadata(): Promise<Record<string, string>>;
  /** ExportSubject / ImportBundle with raw parts, on its own channel. */
  readonly raw: RawPortabilityClient;
}

/** Connects without signing in, enough for GetServerInfo (e.g. to fetch a server's bundle signing keys). */
export async function connectToServer(address: string): Promise<ServerConnection> {
  const noToken: TokenProvider = { getToken: () => Promise.reject(new CliError("this call needs a signed-in session")) };
  const client = createContinuityClient({ address, tokenProvider: noToken, deadlineMs: CALL_DEADLINE_MS, retry: { maxAttempts: 2 } });
  try {
    const info = await calling("GetServerInfo", address, () => client.serverInfo.getServerInfo({}));
    return { address, info, client, close: () => client.close() };
  } catch (error) {
    client.close();
    throw error;
  }
}

function required(value: string | undefined, flag: string, env: string, what: string): string {
  if (value === undefined || value === "") throw new CliError(`${what}: give --${flag} or set ${env}`, EXIT_USAGE);
  return value;
}

/** Signs in as `accountId` of the platform whose private key is in `platformKeyFile`. */
export async function signIn(options: SignInOptions): Promise<SignedInServer> {
  const env = (flag: string) => `CONTINUITY_${(options.flagPrefix + flag).toUpperCase().replaceAll("-", "_")}`;
  const flag = (name: string) => `${options.flagPrefix}${name}`;
  const address = required(options.address, options.flagPrefix === "" ? "server" : "source", options.flagPrefix === "" ? "CONTINUITY_SERVER" : "CONTINUITY_SOURCE", "which server");
  const platformId = required(options.platformId, flag("platform-id"), env("platform-id"), "which platform signs in");
  const keyFile = required(options.platformKeyFile, flag("platform-key"), env("platform-key"), "the platform's private key");
  const accountId = required(options.accountId, flag("account"), env("account"), "whose subject");
  const key = await loadPlatformKey(platformId, keyFile);

  let audience: string | undefined;
  const provider = createAssertionTokenProvider({
    scopes: [IDENTITY_MANAGE],
    getAssertion: () => signAssertion(key, accountId, audience!),
  });
  const client = createContinuityClient({ address, tokenProvider: provider, deadlineMs: CALL_DEADLINE_MS, retry: { maxAttempts: 2 } });
  const raw = createRawPortabilityClient(address);
  const close = () => {
    client.close();
    raw.close();
  };
  try {
    const info = await calling("GetServerInfo", address, () => client.serverInfo.getServerInfo({}));
    audience = info.assertionAudience;
    const token = async () => {
      try {
        return await provider.getToken({
          signal: undefined,
          forceRefresh: false,
          exchangeTimeoutMs: CALL_DEADLINE_MS,
          exchangeToken: (params, signal) =>
            client.tokens.exchangeToken(
              { grantType: TOKEN_EXCHANGE_GRANT, subjectTokenType: JWT_TOKEN_TYPE, scope: "", deviceId: "", deviceDisplayName: "", ...params },
              signal === undefined ? {} : { signal },
            ),
        });
      } catch (error) {
        const problem = asCallProblem("ExchangeToken", address, error);
        const reason = problem instanceof CliError ? problem.facts["reason"] : undefined;
        if (problem instanceof CliError && (reason === "ASSERTION_INVALID" || reason === "PLATFORM_UNKNOWN")) {
          throw new CliError(`${problem.message} (check --${flag("platform-id")} and --${flag("platform-key")})`, problem.exitCode, problem.facts, { cause: error });
        }
        throw problem;
      }
    };
    const first = await token();
    const subject = first.subject ?? "";
    return {
      address,
      info,
      client,
      subject,
      platform: first.platform ?? `platforms/${platformId}`,
      accessToken: async () => (await token()).token,
      callMetadata: async () => ({ authorization: `Bearer ${(await token()).token}`, "continuity-protocol-version": PROTOCOL_VERSION }),
      raw,
      close,
    };
  } catch (error) {
    close();
    throw error;
  }
}
