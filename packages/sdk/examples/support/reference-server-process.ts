import { spawn, type ChildProcess } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// The reference server runs as a child process through its public start contract, the one
// any implementation offers the conformance runner: CONTINUITY_* environment variables in,
// a `CONTINUITY_LISTENING=host:port` line out. The SDK's examples and tests therefore use
// the server exactly as a platform would run it, and never its internals.

const SERVER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../../reference-server");

/** Options of {@link spawnReferenceServer}. */
export interface SpawnReferenceServerOptions {
  /** Data directory (SQLite store, server key). */
  readonly dataDir: string;
  /** Port on 127.0.0.1; 0 picks a free one. */
  readonly port?: number;
  /** Platforms file (`--platforms`); without it the server generates dev platforms `demo-a` and `demo-b`. */
  readonly platformsFile?: string;
  /** Log level of the server's JSON logs on stderr. Default `warn`. */
  readonly logLevel?: string;
  /** Also serve gRPC-web on this port of 127.0.0.1 (0 picks one): `--grpc-web-listen`. */
  readonly grpcWebPort?: number;
  /** Origins the gRPC-web port answers CORS for: `--cors-origin`. */
  readonly corsOrigins?: readonly string[];
}

/** A reference server process that printed its ready line. */
export interface ReferenceServerProcess {
  /** `host:port` the server listens on. */
  readonly address: string;
  /** `host:port` of its gRPC-web port, when `grpcWebPort` was given. */
  readonly grpcWebAddress: string | undefined;
  /** Stops the server gracefully (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts `packages/reference-server/src/main.ts` and waits for its ready line (30 s at most). */
export async function spawnReferenceServer(options: SpawnReferenceServerOptions): Promise<ReferenceServerProcess> {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/main.ts"], {
    cwd: SERVER_DIR,
    env: {
      ...process.env,
      CONTINUITY_LISTEN: `127.0.0.1:${options.port ?? 0}`,
      CONTINUITY_DATA_DIR: options.dataDir,
      CONTINUITY_LOG_LEVEL: options.logLevel ?? "warn",
      // The examples migrate between servers on this machine: loopback sources (PORT-041).
      CONTINUITY_MIGRATION_SOURCES: "127.0.0.0/8,::1",
      ...(options.platformsFile === undefined ? {} : { CONTINUITY_PLATFORMS: options.platformsFile }),
      ...(options.grpcWebPort === undefined ? {} : { CONTINUITY_GRPC_WEB_LISTEN: `127.0.0.1:${options.grpcWebPort}` }),
      ...(options.corsOrigins === undefined ? {} : { CONTINUITY_CORS_ORIGIN: options.corsOrigins.join(",") }),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let exited = false;
  const exit = new Promise<void>((resolveExit) => child.once("exit", () => resolveExit()));
  void exit.then(() => {
    exited = true;
  });
  const { address, grpcWebAddress } = await waitForReady(child);
  return {
    address,
    grpcWebAddress,
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      await exit;
    },
  };
}

function waitForReady(child: ChildProcess): Promise<{ address: string; grpcWebAddress: string | undefined }> {
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
        // The gRPC-web line, when there is one, comes before the ready line.
        resolveReady({ address: match[1], grpcWebAddress: /CONTINUITY_GRPC_WEB_LISTENING=(\S+)/.exec(stdout)?.[1] });
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
