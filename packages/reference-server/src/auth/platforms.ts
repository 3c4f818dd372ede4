import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { exportJWK, generateKeyPair, type JSONWebKeySet, type JWK } from "jose";
import { z } from "zod";
import { ALL_SCOPES, type Scope } from "./context.js";
import { PLATFORM_ID } from "./resource-names.js";
import { isProviderUrl } from "./provider-documents.js";

/**
 * A platform as the server knows it: configured by the operator, never created by RPC, so
 * that the set of parties able to vouch for people is an explicit, auditable file.
 */
export interface PlatformConfig {
  /** `[a-z0-9-]{1,63}`; the `iss` of its assertions and the `{platform}` of resource names. */
  readonly id: string;
  readonly displayName: string;
  /** Public keys the platform signs assertions with; absent for a platform that signs in with OIDC only. */
  readonly jwks: JSONWebKeySet | undefined;
  /** The platform's own OpenID provider, whose ID tokens it may exchange (TOKEN-020). */
  readonly oidc: OidcConfig | undefined;
  /** The most a token exchanged by this platform may carry. */
  readonly scopes: ReadonlySet<Scope>;
}

/**
 * A platform's OpenID provider. Its keys are fetched from `jwksUri` (or the `jwks_uri` its
 * discovery document names) and cached, never configured inline, because providers rotate
 * them on their own schedule.
 */
export interface OidcConfig {
  /** Compared with the ID token's `iss` byte for byte. */
  readonly issuer: string;
  /** The OAuth client id of the platform's app at the provider; the ID token's `aud` must contain it. */
  readonly clientId: string;
  /** Where the JWKS is; undefined: found through `{issuer}/.well-known/openid-configuration` (TOKEN-029). */
  readonly jwksUri: URL | undefined;
  /** Longest wait for the keys: one JWKS fetch, with the discovery fetch before it if any (TOKEN-026). */
  readonly jwksTimeoutMs: number;
  /** Least time between two fetches caused by an unknown `kid` (TOKEN-025). */
  readonly jwksCooldownMs: number;
  /** Age at which a copy of the JWKS (and of the discovery document) is fetched again. */
  readonly jwksRefreshMs: number;
  /** Age past which a copy that could not be refreshed is no longer used (TOKEN-028). */
  readonly jwksMaxStaleMs: number;
}

/** Defaults of {@link OidcConfig}, stated here because the spec and README quote them. */
export const OIDC_DEFAULTS = { jwksTimeoutMs: 5_000, jwksCooldownMs: 30_000, jwksCacheMaxAgeMs: 600_000, jwksMaxStaleMs: 86_400_000 } as const;
/** The longest an operator may keep using keys its provider could not confirm. */
export const OIDC_MAX_STALE_LIMIT_MS = 604_800_000;

/** Looks platforms up by id; the only view of the platforms file the rest of the server gets. */
export interface PlatformRegistry {
  get(id: string): PlatformConfig | undefined;
  list(): readonly PlatformConfig[];
}

/** Why a platforms file was refused; the message names the file and the offending entry. */
export class PlatformsFileError extends Error {
  override readonly name = "PlatformsFileError";
}


const jwkSchema = z
  .object({ kty: z.string().min(1) })
  .catchall(z.unknown())
  .superRefine((key, ctx) => {
    // A platforms file is configuration that gets copied around; refusing private or
    // symmetric material here keeps a leaked secret from ever looking "accepted".
    if ("d" in key || "p" in key || "q" in key) {
      ctx.addIssue({ code: "custom", message: "must be a public key (it has private members)" });
    }
    if (key.kty === "oct") {
      ctx.addIssue({ code: "custom", message: "symmetric keys are not allowed (HS* is never accepted)" });
    }
  });

const jwksSchema = z.object({ keys: z.array(jwkSchema).min(1, "needs at least one key") });

// Plain http only on loopback, where a test or a sidecar serves the provider's documents.
const providerUrl = z
  .url({ protocol: /^https?$/, message: "must be an https URL" })
  .refine((value) => isProviderUrl(new URL(value)), "must be https (http only on a loopback host)");

const oidcSchema = z
  .object({
    // OpenID Connect Discovery §3: an https URL without query or fragment.
    issuer: providerUrl.max(255).refine((value) => !value.includes("?") && !value.includes("#"), "must have no query or fragment"),
    clientId: z.string().min(1).max(255),
    // Absent: discovered from the issuer (TOKEN-029).
    jwksUri: providerUrl.optional(),
    // Bounded by TOKEN-026 (a fetch gives up within 5 s) and TOKEN-025 (a new kid is seen within 30 s).
    jwksTimeoutMs: z.number().int().min(100).max(5_000).optional(),
    jwksCooldownMs: z.number().int().min(1_000).max(30_000).optional(),
    // A key the provider withdrew is refused within jwksRefreshMs once the provider answers (TOKEN-028).
    jwksRefreshMs: z.number().int().min(1_000).max(OIDC_DEFAULTS.jwksCacheMaxAgeMs).optional(),
    jwksMaxStaleMs: z.number().int().min(1_000).max(OIDC_MAX_STALE_LIMIT_MS).optional(),
  })
  .strict()
  .refine((oidc) => (oidc.jwksMaxStaleMs ?? OIDC_DEFAULTS.jwksMaxStaleMs) >= (oidc.jwksRefreshMs ?? OIDC_DEFAULTS.jwksCacheMaxAgeMs), {
    message: "jwksMaxStaleMs must be at least jwksRefreshMs",
  });

const platformEntrySchema = z
  .object({
    id: z.string().regex(PLATFORM_ID, "must match [a-z0-9-]{1,63}"),
    displayName: z.string().min(1).max(100).optional(),
    jwks: jwksSchema.optional(),
    jwksFile: z.string().min(1).optional(),
    oidc: oidcSchema.optional(),
    scopes: z.array(z.enum(ALL_SCOPES as [Scope, ...Scope[]])).min(1).optional(),
  })
  .strict()
  .refine((entry) => entry.jwks === undefined || entry.jwksFile === undefined, {
    message: "needs at most one of `jwks` or `jwksFile`",
  })
  .refine((entry) => entry.jwks !== undefined || entry.jwksFile !== undefined || entry.oidc !== undefined, {
    message: "needs `jwks`, `jwksFile` or `oidc`",
  });

const platformsFileSchema = z
  .object({ platforms: z.array(platformEntrySchema).min(1, "needs at least one platform") })
  .strict();

function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length > 0 ? issue.path.join(".") : "(root)"}: ${issue.message}`)
    .join("; ");
}

async function readJson(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    throw new PlatformsFileError(`cannot read ${what} ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    throw new PlatformsFileError(`${what} ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

/** Builds a registry from already-validated platform configs (tests, embedding). */
export function createPlatformRegistry(platforms: readonly PlatformConfig[]): PlatformRegistry {
  const byId = new Map<string, PlatformConfig>();
  for (const platform of platforms) {
    if (!PLATFORM_ID.test(platform.id)) {
      throw new PlatformsFileError(`platform id ${JSON.stringify(platform.id)} must match [a-z0-9-]{1,63}`);
    }
    if (byId.has(platform.id)) throw new PlatformsFileError(`platform id ${platform.id} appears twice`);
    if (platform.jwks === undefined && platform.oidc === undefined) {
      throw new PlatformsFileError(`platform ${platform.id} needs a JWKS or an OIDC provider`);
    }
    if (platform.oidc !== undefined) {
      // The ID token's (iss, aud) is all that picks its platform, so two platforms may
      // share a provider (Google, Entra) only with different client ids.
      const { issuer, clientId } = platform.oidc;
      const twin = [...byId.values()].find((other) => other.oidc?.issuer === issuer && other.oidc.clientId === clientId);
      if (twin !== undefined) {
        throw new PlatformsFileError(`platforms ${twin.id} and ${platform.id} have the same OIDC issuer and client id`);
      }
    }
    byId.set(platform.id, platform);
  }
  const all = [...byId.values()];
  return { get: (id) => byId.get(id), list: () => all };
}

/**
 * Reads and validates a platforms file (see the design note for its shape). `jwksFile`
 * paths are relative to the platforms file, so a directory of config can move as a whole.
 */
export async function loadPlatformsFile(path: string): Promise<PlatformRegistry> {
  const absolute = resolve(path);
  const parsed = platformsFileSchema.safeParse(await readJson(absolute, "platforms file"));
  if (!parsed.success) {
    throw new PlatformsFileError(`platforms file ${absolute} is invalid: ${describeZodError(parsed.error)}`);
  }
  const platforms: PlatformConfig[] = [];
  for (const entry of parsed.data.platforms) {
    let jwks = entry.jwks;
    if (entry.jwksFile !== undefined) {
      const jwksPath = isAbsolute(entry.jwksFile) ? entry.jwksFile : join(dirname(absolute), entry.jwksFile);
      const fromFile = jwksSchema.safeParse(await readJson(jwksPath, `JWKS file of platform ${entry.id}`));
      if (!fromFile.success) {
        throw new PlatformsFileError(
          `JWKS file ${jwksPath} of platform ${entry.id} is invalid: ${describeZodError(fromFile.error)}`,
        );
      }
      jwks = fromFile.data;
    }
    const oidc = entry.oidc;
    platforms.push({
      id: entry.id,
      displayName: entry.displayName ?? entry.id,
      jwks: jwks as JSONWebKeySet | undefined,
      oidc:
        oidc === undefined
          ? undefined
          : {
              issuer: oidc.issuer,
              clientId: oidc.clientId,
              jwksUri: oidc.jwksUri === undefined ? undefined : new URL(oidc.jwksUri),
              jwksTimeoutMs: oidc.jwksTimeoutMs ?? OIDC_DEFAULTS.jwksTimeoutMs,
              jwksCooldownMs: oidc.jwksCooldownMs ?? OIDC_DEFAULTS.jwksCooldownMs,
              jwksRefreshMs: oidc.jwksRefreshMs ?? OIDC_DEFAULTS.jwksCacheMaxAgeMs,
              jwksMaxStaleMs: oidc.jwksMaxStaleMs ?? OIDC_DEFAULTS.jwksMaxStaleMs,
            },
      scopes: new Set(entry.scopes ?? ALL_SCOPES),
    });
  }
  return createPlatformRegistry(platforms);
}

/** The platforms a fresh data directory gets when the operator names none. */
export const DEV_PLATFORM_IDS = ["demo-a", "demo-b"] as const;

/** Where {@link ensureDevPlatforms} put things, so the CLI can tell the operator. */
export interface DevPlatforms {
  /** The generated platforms file, usable as `--platforms`. */
  readonly platformsFile: string;
  /** Private JWK per platform id, for signing assertions in demos and manual tests. */
  readonly privateKeyFiles: Readonly<Record<string, string>>;
  /** True when this call generated the keys (first start on this data directory). */
  readonly created: boolean;
}

/**
 * Makes a development platforms file with fresh ES256 keys for `demo-a` and `demo-b` in the
 * data directory, once. A server must never start with keys it shares with the world, so
 * there is no built-in default key: each data directory mints its own, and the private
 * halves stay on this machine (mode 0600) for the developer's own assertions.
 */
export async function ensureDevPlatforms(dataDir: string): Promise<DevPlatforms> {
  const dir = join(resolve(dataDir), "dev-platforms");
  const platformsFile = join(dir, "platforms.json");
  const privateKeyFiles = Object.fromEntries(
    DEV_PLATFORM_IDS.map((id) => [id, join(dir, `${id}.private.jwk`)]),
  );
  try {
    await readFile(platformsFile);
    return { platformsFile, privateKeyFiles, created: false };
  } catch {
    // Not there yet: fall through and create it.
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const platforms = [];
  for (const id of DEV_PLATFORM_IDS) {
    const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
    const kid = `${id}-dev-1`;
    const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
    const privateJwk: JWK = { ...(await exportJWK(privateKey)), kid, alg: "ES256", use: "sig" };
    const keyFile = privateKeyFiles[id] as string;
    await writeFile(keyFile, `${JSON.stringify(privateJwk, null, 2)}\n`, { mode: 0o600 });
    await chmod(keyFile, 0o600);
    platforms.push({ id, displayName: `Demo platform ${id.slice(-1).toUpperCase()}`, jwks: { keys: [publicJwk] } });
  }
  // Written last, so an interrupted first start is retried instead of leaving a file that
  // names keys nobody holds.
  await writeFile(platformsFile, `${JSON.stringify({ platforms }, null, 2)}\n`, { mode: 0o644 });
  return { platformsFile, privateKeyFiles, created: true };
}
