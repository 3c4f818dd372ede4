import { spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// The `continuity` command (packages/cli) run the way a person or a script runs it: a child
// process with arguments in, text or `--json` out, and an exit status. The examples use its
// command line, its only public surface, and never its internals.

const CLI_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../../cli");

/** What a `continuity` run printed, and how it exited. */
export interface CliRun {
  /** The command line as a person would type it (`continuity …`). */
  readonly commandLine: string;
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `continuity ARGS…` from the checkout's sources (`packages/cli/src/main.ts`, as the
 * package's bin does) and resolves when it exits; rejects only when it cannot start. Paths in
 * `args` should be absolute. CONTINUITY_* variables of this process are not passed on, so that
 * only the given flags decide what the command does.
 */
export function runContinuityCli(args: readonly string[], options: { readonly timeoutMs?: number } = {}): Promise<CliRun> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("CONTINUITY_")));
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/main.ts", ...args], { cwd: CLI_DIR, env, stdio: ["ignore", "pipe", "pipe"] });
  const commandLine = ["continuity", ...args].join(" ");
  return new Promise((resolveRun, reject) => {
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString("utf8");
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString("utf8");
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolveRun({ commandLine, code: code ?? (signal === "SIGKILL" ? 137 : 1), stdout, stderr });
    });
  });
}
