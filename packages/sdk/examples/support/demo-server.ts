import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPlatformBackend, type PlatformBackend } from "./platform-backend.js";
import { spawnReferenceServer } from "./reference-server-process.js";

/** The two platforms of the demo story. */
export type DemoPlatform = "course-a" | "course-b";

/**
 * The reference server on 127.0.0.1, on its embedded SQLite store in a temporary data
 * directory, configured with two platforms whose signing keys the demo holds (playing both
 * platforms' backends).
 */
export interface DemoServer {
  /** `host:port` the server listens on. */
  readonly address: string;
  /** Signs a platform assertion for an account, as that platform's backend would. */
  assert(platformId: DemoPlatform, accountId: string): Promise<string>;
  /** Stops the server and deletes its data directory. */
  close(): Promise<void>;
}

/**
 * Starts the reference server the way a deployment does: each platform's public key goes
 * into the server's platforms file, the private keys stay with the platforms' backends.
 */
export async function startDemoServer(): Promise<DemoServer> {
  const dataDir = await mkdtemp(join(tmpdir(), "continuity-demo-"));
  const backends = new Map<DemoPlatform, PlatformBackend>();
  const platforms = [];
  for (const id of ["course-a", "course-b"] as const) {
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const kid = `${id}-demo`;
    backends.set(id, await createPlatformBackend({ platformId: id, privateJwk: { ...privateKey.export({ format: "jwk" }), kid } }));
    platforms.push({ id, displayName: id, jwks: { keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "ES256", use: "sig" }] } });
  }
  const platformsFile = join(dataDir, "platforms.json");
  await writeFile(platformsFile, `${JSON.stringify({ platforms }, null, 2)}\n`);
  const server = await spawnReferenceServer({ dataDir, platformsFile });
  return {
    address: server.address,
    assert(platformId, accountId) {
      const backend = backends.get(platformId);
      if (backend === undefined) throw new Error(`the demo server has no platform ${platformId}`);
      return backend.assert(accountId);
    },
    async close() {
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
