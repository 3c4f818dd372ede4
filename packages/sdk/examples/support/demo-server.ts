import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPlatformBackend, type PlatformBackend } from "./platform-backend.js";
import { spawnReferenceServer } from "./reference-server-process.js";

/** The two platforms of the demo stories. */
export type DemoPlatform = "course-a" | "course-b";

const DEMO_PLATFORMS: readonly DemoPlatform[] = ["course-a", "course-b"];

/**
 * The demo's two platforms, played by the demo: their public keys in a platforms file that
 * any number of servers can be configured with (two vendors serving the same platforms), and
 * their private keys with the platforms' backends, also as files, as the `continuity` CLI
 * takes them (`--platform-key`).
 */
export interface DemoPlatforms {
  /** The platforms file (`--platforms`, `CONTINUITY_PLATFORMS`) with each platform's public key. */
  readonly platformsFile: string;
  /** The private JWK file of a platform's signing key. */
  keyFile(platformId: DemoPlatform): string;
  /** Signs a platform assertion for an account, as that platform's backend would. */
  assert(platformId: DemoPlatform, accountId: string): Promise<string>;
  /** Deletes the files. */
  close(): Promise<void>;
}

/**
 * The reference server on 127.0.0.1, on its embedded SQLite store in a temporary data
 * directory, configured with the demo's platforms.
 */
export interface DemoServer {
  /** `host:port` the server listens on. */
  readonly address: string;
  /** The platforms it trusts, with their signing keys. */
  readonly platforms: DemoPlatforms;
  /** Signs a platform assertion for an account, as that platform's backend would. */
  assert(platformId: DemoPlatform, accountId: string): Promise<string>;
  /** Stops the server and deletes its data directory (and the platforms' files if it made them). */
  close(): Promise<void>;
}

/** Generates the two platforms' key pairs into a private temporary directory. */
export async function createDemoPlatforms(): Promise<DemoPlatforms> {
  const dir = await mkdtemp(join(tmpdir(), "continuity-demo-platforms-"));
  const backends = new Map<DemoPlatform, PlatformBackend>();
  const platforms = [];
  for (const id of DEMO_PLATFORMS) {
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const kid = `${id}-demo`;
    const privateJwk = { ...privateKey.export({ format: "jwk" }), kid, alg: "ES256" };
    await writeFile(join(dir, `${id}.private.jwk`), `${JSON.stringify(privateJwk)}\n`, { mode: 0o600 });
    backends.set(id, await createPlatformBackend({ platformId: id, privateJwk }));
    platforms.push({ id, displayName: id, jwks: { keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" }] } });
  }
  const platformsFile = join(dir, "platforms.json");
  await writeFile(platformsFile, `${JSON.stringify({ platforms }, null, 2)}\n`);
  return {
    platformsFile,
    keyFile: (platformId) => join(dir, `${platformId}.private.jwk`),
    assert(platformId, accountId) {
      const backend = backends.get(platformId);
      if (backend === undefined) throw new Error(`the demo has no platform ${platformId}`);
      return backend.assert(accountId);
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Starts the reference server the way a deployment does: each platform's public key goes
 * into the server's platforms file, the private keys stay with the platforms' backends.
 * Servers given the same `platforms` trust the same platforms.
 */
export async function startDemoServer(options: { readonly platforms?: DemoPlatforms } = {}): Promise<DemoServer> {
  const platforms = options.platforms ?? (await createDemoPlatforms());
  const dataDir = await mkdtemp(join(tmpdir(), "continuity-demo-"));
  const server = await spawnReferenceServer({ dataDir, platformsFile: platforms.platformsFile }).catch(async (error: unknown) => {
    await rm(dataDir, { recursive: true, force: true });
    if (options.platforms === undefined) await platforms.close();
    throw error;
  });
  return {
    address: server.address,
    platforms,
    assert: (platformId, accountId) => platforms.assert(platformId, accountId),
    async close() {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
      if (options.platforms === undefined) await platforms.close();
    },
  };
}
