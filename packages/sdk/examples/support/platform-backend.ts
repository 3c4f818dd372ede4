import { readFile } from "node:fs/promises";
import type { JWK } from "jose";
import { createAssertionSigner } from "../../src/platform/index.js";

/**
 * What a platform's backend does for Continuity, in a few lines: it signs short-lived
 * assertions ("this is our user `sub`") with the platform's private key, using the SDK's
 * `@continuity/sdk/platform` helper. In production this runs on the platform's servers and
 * the app fetches the assertion; the SDK in the app only ever sees the assertion, never the
 * key. Examples and tests run it in-process.
 */
export interface PlatformBackend {
  /** The platform id (the assertion's `iss`). */
  readonly platformId: string;
  /** A fresh assertion for the platform's account `accountId`. */
  assert(accountId: string): Promise<string>;
}

/** Options of `createPlatformBackend`. */
export interface PlatformBackendOptions {
  /** Platform id as configured on the server. */
  readonly platformId: string;
  /** The platform's private signing key: a private JWK (with `kid`), or a path to one. */
  readonly privateJwk: JWK | string;
  /** The server's assertion audience. Default `continuity`. */
  readonly audience?: string;
  /** Assertion lifetime in seconds (at most 300). Default 120. */
  readonly lifetimeSeconds?: number;
}

/** Creates an assertion signer for one platform, from its key or its key file. */
export async function createPlatformBackend(options: PlatformBackendOptions): Promise<PlatformBackend> {
  const privateKey = typeof options.privateJwk === "string" ? (JSON.parse(await readFile(options.privateJwk, "utf8")) as JWK) : options.privateJwk;
  const signer = await createAssertionSigner({
    platformId: options.platformId,
    privateKey,
    audience: options.audience,
    lifetimeSeconds: options.lifetimeSeconds,
  });
  return { platformId: signer.platformId, assert: (accountId) => signer.sign(accountId) };
}
