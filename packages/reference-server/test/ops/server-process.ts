import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The package directory, where `pnpm start` runs. */
export const PACKAGE_DIR = fileURLToPath(new URL("../..", import.meta.url));

/** A `src/main.ts` child process, as `pnpm start` runs it. */
export interface ServerProcess {
  readonly child: ChildProcess;
  /** Everything written to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the address of the `CONTINUITY_LISTENING=` line; rejects if the process exits first. */
  ready(timeoutMs?: number): Promise<string>;
  /** Resolves with the exit code (or the signal name) once the process ended. */
  exited(): Promise<number | string>;
  /** SIGKILL if still alive (test cleanup). */
  kill(): void;
}

/** How to start the child, beyond its arguments and environment. */
export interface SpawnOptions {
  /** Start under this umask (via `sh`), as a shell or service manager would; default: inherited. */
  readonly umask?: number;
  /** Send stderr into the stdout pipe, as `2>&1 | reader` does; default: a pipe of its own. */
  readonly stderrToStdout?: boolean;
  /** Send stderr to this path (e.g. a FIFO the test holds) instead of a pipe to the test. */
  readonly stderrPath?: string;
}

/** Starts the server CLI with `args` and extra env, from the package directory. */
export function spawnServer(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
  options: SpawnOptions = {},
): ServerProcess {
  const command = [process.execPath, "--conditions=source", "--import", "tsx", "src/main.ts", ...args];
  const redirect = options.stderrToStdout === true ? " 2>&1" : options.stderrPath === undefined ? "" : ` 2>'${options.stderrPath}'`;
  const umask = options.umask === undefined ? "" : `umask ${options.umask.toString(8).padStart(3, "0")} && `;
  const [file, ...argv] = umask === "" && redirect === "" ? command : ["/bin/sh", "-c", `${umask}exec "$@"${redirect}`, "sh", ...command];
  const child = spawn(file!, argv, {
    cwd: PACKAGE_DIR,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
  const exit = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    ready(timeoutMs = 20_000) {
      return new Promise<string>((resolve, reject) => {
        const check = () => {
          const match = /^CONTINUITY_LISTENING=(.+)$/m.exec(out);
          if (match?.[1] !== undefined) {
            cleanup();
            resolve(match[1].trim());
          }
        };
        const onExit = (code: number | null) => {
          cleanup();
          reject(new Error(`server exited (${code}) before it was ready:\n${err}`));
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`server not ready after ${timeoutMs} ms:\n${err}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          child.stdout?.off("data", check);
          child.off("exit", onExit);
        };
        child.stdout?.on("data", check);
        child.once("exit", onExit);
        check();
      });
    },
    exited: () => exit,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
