import { fileURLToPath, pathToFileURL } from "node:url";
import { dirname, resolve } from "node:path";

/**
 * The reference server running in this process on 127.0.0.1:0, with a temporary data
 * directory and two freshly generated platforms (`course-a`, `course-b`).
 */
export interface DemoServer {
  /** `host:port` the server listens on. */
  readonly address: string;
  /** Signs a platform assertion for an account, as that platform's backend would. */
  assert(platformId: "course-a" | "course-b", accountId: string): Promise<string>;
  /** Stops the server and deletes its data directory. */
  close(): Promise<void>;
}

interface Harness {
  startTestServer(): Promise<{
    address: string;
    platforms: Readonly<Record<string, { assertion(accountId: string): Promise<string> }>>;
    close(): Promise<void>;
  }>;
}

/**
 * Starts the reference server in-process through its test harness. The harness is loaded
 * at run time by path because `@continuity/sdk` cannot depend on the server package (the
 * server depends on the SDK); once the server package exports a starter, this becomes a
 * plain import.
 */
export async function startDemoServer(): Promise<DemoServer> {
  const here = dirname(fileURLToPath(import.meta.url));
  const harnessUrl = pathToFileURL(resolve(here, "../../../reference-server/src/testing/harness.ts")).href;
  const harness = (await import(harnessUrl)) as Harness;
  const server = await harness.startTestServer();
  return {
    address: server.address,
    assert(platformId, accountId) {
      const platform = server.platforms[platformId];
      if (platform === undefined) throw new Error(`the demo server has no platform ${platformId}`);
      return platform.assertion(accountId);
    },
    close: () => server.close(),
  };
}
