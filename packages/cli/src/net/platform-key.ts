/**
 * The CLI signs in the way a platform's backend does: it holds the platform's private key
 * (a JWK file, like the ones `pnpm start` writes for its development platforms), signs a
 * short-lived assertion that names the person's account, and exchanges it for an access token
 * (docs/spec/auth.md). Nothing here is a shortcut a platform would not also have.
 */
import { randomUUID } from "node:crypto";
import { importJWK, SignJWT, type JWK } from "jose";
import { CliError } from "../errors.js";
import { readJsonFile } from "../file/text-file.js";

/** The `typ` of a platform assertion. */
export const ASSERTION_TYP = "continuity-assertion+jwt";
/** How long an assertion the CLI signs lives: it is used at once, and servers accept at most 300 s. */
export const ASSERTION_LIFETIME_SECONDS = 60;

/** The algorithms servers accept assertions in. */
const ASSERTION_ALGORITHMS = ["ES256", "EdDSA", "RS256"] as const;

/** A platform's signing key as loaded from its JWK file. */
export interface PlatformKey {
  readonly platformId: string;
  readonly kid: string | undefined;
  readonly alg: (typeof ASSERTION_ALGORITHMS)[number];
  readonly jwk: JWK;
}

function algorithmOf(jwk: JWK): PlatformKey["alg"] | undefined {
  const named = ASSERTION_ALGORITHMS.find((alg) => alg === jwk.alg);
  if (named !== undefined) return named;
  if (jwk.alg !== undefined) return undefined;
  if (jwk.kty === "EC" && jwk.crv === "P-256") return "ES256";
  if (jwk.kty === "OKP" && jwk.crv === "Ed25519") return "EdDSA";
  if (jwk.kty === "RSA") return "RS256";
  return undefined;
}

/** Loads a platform's private JWK, refusing a public or unusable one with a line that says why. */
export async function loadPlatformKey(platformId: string, path: string): Promise<PlatformKey> {
  const value = await readJsonFile(path, "a private JWK");
  if (typeof value !== "object" || value === null || typeof (value as JWK).kty !== "string") {
    throw new CliError(`${path} is not a JWK: it has no "kty"`);
  }
  const jwk = value as JWK;
  if (typeof jwk.d !== "string") throw new CliError(`${path} is a public key: --platform-key needs the platform's private JWK (with "d")`);
  const alg = algorithmOf(jwk);
  if (alg === undefined) throw new CliError(`${path}: a ${jwk.kty}${jwk.crv === undefined ? "" : `/${jwk.crv}`} key${jwk.alg === undefined ? "" : ` for ${jwk.alg}`} cannot sign assertions (ES256, EdDSA or RS256)`);
  try {
    await importJWK(jwk, alg);
  } catch (error) {
    throw new CliError(`${path} is not a usable ${alg} private key: ${(error as Error).message}`, undefined, {}, { cause: error });
  }
  return { platformId, kid: jwk.kid, alg, jwk };
}

/** Signs an assertion for `accountId` with the platform's key, for the server whose audience is `audience`. */
export async function signAssertion(key: PlatformKey, accountId: string, audience: string): Promise<string> {
  const issuedAt = Math.floor(Date.now() / 1000);
  const header = key.kid === undefined ? { alg: key.alg, typ: ASSERTION_TYP } : { alg: key.alg, typ: ASSERTION_TYP, kid: key.kid };
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader(header)
    .setIssuer(key.platformId)
    .setAudience(audience)
    .setSubject(accountId)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + ASSERTION_LIFETIME_SECONDS)
    .sign(await importJWK(key.jwk, key.alg));
}
