import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createAssertionTokenProvider, createContinuityClient, type ContinuityClient } from "../../src/index.js";
import { createPlatformBackend, type PlatformBackend } from "../../examples/support/platform-backend.js";

// The reference server runs as a child process through its public start contract (the one
// the conformance runner uses: CONTINUITY_LISTEN / CONTINUITY_DATA_DIR and the
// CONTINUITY_LISTENING= line). A real process makes "the server goes away and comes back on
// the same data" exactly that, and keeps the SDK's tests free of the server's internals.

const SERVER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../../reference-server");

/** A reference server on loopback, with the dev platforms' assertion signers. */
export interface RunningServer {
  readonly address: string;
  readonly dataDir: string;
  /** Signs assertions for dev platform `demo-a`. */
  readonly platformA: PlatformBackend;
  /** Signs assertions for dev platform `demo-b`. */
  readonly platformB: PlatformBackend;
  /** Stops the process (SIGTERM, graceful); the data directory stays. */
  stop(): Promise<void>;
  /** Starts a new process on the same data directory and the same port. */
  restart(): Promise<RunningServer>;
  /** Stops and deletes the data directory. */
  dispose(): Promise<void>;
}

/** Starts the reference server on 127.0.0.1 (port 0 unless given) with a fresh or given data directory. */
export async function startReferenceServer(options: { dataDir?: string; port?: number } = {}): Promise<RunningServer> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "continuity-sdk-it-")));
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/main.ts"], {
    cwd: SERVER_DIR,
    env: {
      ...process.env,
      CONTINUITY_LISTEN: `127.0.0.1:${options.port ?? 0}`,
      CONTINUITY_DATA_DIR: dataDir,
      CONTINUITY_LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const address = await waitForReady(child);
  const keys = join(dataDir, "dev-platforms");
  let exited = false;
  const exit = new Promise<void>((resolveExit) => child.once("exit", () => resolveExit()));
  void exit.then(() => {
    exited = true;
  });
  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill("SIGTERM");
    await exit;
  };
  return {
    address,
    dataDir,
    platformA: await createPlatformBackend({ platformId: "demo-a", privateJwk: join(keys, "demo-a.private.jwk") }),
    platformB: await createPlatformBackend({ platformId: "demo-b", privateJwk: join(keys, "demo-b.private.jwk") }),
    stop,
    async restart() {
      await stop();
      return startReferenceServer({ dataDir, port: Number(address.split(":").at(-1)) });
    },
    async dispose() {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

function waitForReady(child: ChildProcess): Promise<string> {
  return new Promise((resolveReady, reject) => {
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`reference server did not start in time:\n${stderr}`));
    }, 30_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
      const match = /CONTINUITY_LISTENING=(\S+)/.exec(stdout);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolveReady(match[1]);
      }
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`reference server exited with ${code}:\n${stderr}`));
    });
  });
}

/** A client for one device of one platform account. */
export function deviceClient(
  address: string,
  platform: PlatformBackend,
  accountId: string,
  deviceId: string,
  options: { deadlineMs?: number } = {},
): ContinuityClient {
  return createContinuityClient({
    address,
    tokenProvider: createAssertionTokenProvider({ deviceId, getAssertion: () => platform.assert(accountId) }),
    deadlineMs: options.deadlineMs ?? 5_000,
    retry: { baseDelayMs: 20, maxDelayMs: 200 },
  });
}
