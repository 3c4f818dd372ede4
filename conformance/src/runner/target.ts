import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { RestartOptions } from "../harness/context.js";
import { PLAINTEXT, type TransportSecurity } from "../harness/security.js";
import { postgresSchemas } from "./postgres-schemas.js";

/**
 * The addresses a spawned server is told it may dial live-migration sources at
 * (`CONTINUITY_MIGRATION_SOURCES`, PORT-041): the suite's servers all listen on loopback,
 * which a server must not dial unless its operator allows it.
 */
export const SPAWN_MIGRATION_SOURCES = "127.0.0.0/8,::1";

/** The ready line the spawned server prints on stdout (runner contract). */
export const READY_LINE_PREFIX = "CONTINUITY_LISTENING=";

/** How long a spawned server has to print its ready line, unless told otherwise. */
export const READY_TIMEOUT_MS = 30_000;

/** A server under test. `restart` exists only when the suite owns the process. */
export interface Target {
  readonly mode: "attach" | "spawn";
  readonly description: string;
  address(): string;
  /** How the server is dialed (siblings of a spawned server are dialed the same way). */
  readonly security: TransportSecurity;
  readonly restart: ((options: RestartOptions) => Promise<void>) | undefined;
  /**
   * Starts another, independent server of the same implementation (spawn mode only), with
   * `env` added to the runner contract's environment (e.g. a short token lifetime).
   */
  readonly spawnSibling: ((env?: Readonly<Record<string, string>>) => Promise<Target>) | undefined;
  /** The server's captured stderr/stdout tail, for failure reports. */
  output(): string;
  /** True when the spawned process died by itself (a crash). */
  crashed(): boolean;
  stop(): Promise<void>;
}

/** Attach mode: the server runs elsewhere and trusts conformance/fixtures/platforms.json. */
export function attachTarget(address: string, security: TransportSecurity = PLAINTEXT): Target {
  return {
    mode: "attach",
    description: `${security.tls ? "https://" : ""}${address}`,
    address: () => address,
    security,
    restart: undefined,
    spawnSibling: undefined,
    output: () => "",
    crashed: () => false,
    stop: async () => {},
  };
}

/** What spawn mode starts. */
export interface SpawnOptions {
  readonly command: string;
  readonly cwd: string;
  readonly platformsFile: string;
  readonly audience: string;
  /** Extra environment for the spawned server. */
  readonly env?: Readonly<Record<string, string>>;
  readonly readyTimeoutMs?: number;
  /** How to dial what the command starts; default plaintext (the command configures its own TLS). */
  readonly security?: TransportSecurity;
}

const OUTPUT_TAIL_BYTES = 64 * 1024;

/**
 * Spawn mode: starts the command with the runner contract's environment, waits for the
 * ready line, and owns the process (and its data directory) until `stop`.
 */
export async function spawnTarget(options: SpawnOptions): Promise<Target> {
  // CONTINUITY_STORE=postgres://…: a schema per data directory, as a file store has its directory.
  const schemas = postgresSchemas(options.env?.["CONTINUITY_STORE"] ?? process.env["CONTINUITY_STORE"]);
  let dataDir = await mkdtemp(join(tmpdir(), "continuity-conformance-data-"));
  const dataDirs = [dataDir];
  let child: ChildProcess | undefined;
  let address = "";
  let output = "";
  let expectedExit = false;
  let crashed = false;

  const append = (text: string): void => {
    output = (output + text).slice(-OUTPUT_TAIL_BYTES);
  };

  // If the runner itself dies (a crash, Ctrl-C), the server it started must not outlive it.
  const killOnExit = (): void => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  };
  process.on("exit", killOnExit);

  const start = async (): Promise<void> => {
    expectedExit = false;
    const proc = spawn(options.command, {
      shell: true,
      detached: true,
      cwd: options.cwd,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        ...options.env,
        CONTINUITY_LISTEN: "127.0.0.1:0",
        CONTINUITY_DATA_DIR: dataDir,
        CONTINUITY_PLATFORMS: options.platformsFile,
        CONTINUITY_AUDIENCE: options.audience,
        CONTINUITY_MIGRATION_SOURCES: SPAWN_MIGRATION_SOURCES,
        ...(schemas === undefined ? {} : { CONTINUITY_STORE: schemas.urlFor(dataDir) }),
      },
    });
    child = proc;
    proc.stderr?.setEncoding("utf8").on("data", (text: string) => append(text));
    const ready = new Promise<string>((resolve, reject) => {
      const timeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
      const timer = setTimeout(() => reject(new Error(`server printed no ${READY_LINE_PREFIX} line within ${timeoutMs} ms`)), timeoutMs);
      const lines = createInterface({ input: proc.stdout! });
      lines.on("line", (line) => {
        append(`${line}\n`);
        if (line.startsWith(READY_LINE_PREFIX)) {
          clearTimeout(timer);
          resolve(normalizeAddress(line.slice(READY_LINE_PREFIX.length).trim()));
        }
      });
      proc.once("exit", (code, signal) => {
        clearTimeout(timer);
        if (!expectedExit) crashed = true;
        reject(new Error(`server exited before it was ready (code ${code}, signal ${signal})`));
      });
      proc.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    try {
      address = await ready;
    } catch (error) {
      await stopProcess("SIGKILL");
      throw new Error(`${(error as Error).message}\n--- server output ---\n${output}`);
    }
  };

  const stopProcess = async (signal: "SIGTERM" | "SIGKILL"): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    expectedExit = true;
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    killGroup(proc, signal);
    const timer = setTimeout(() => killGroup(proc, "SIGKILL"), 5_000);
    await exited;
    // The shell a command runs under ends at the signal at once (dash does not exec the
    // command), while the server behind it may still be shutting down: a restart would start
    // the next server beside it, and `stop` remove its data directory under it. Stopped means
    // nothing of its process group is left (the SIGKILL above bounds the wait).
    if (proc.pid !== undefined) await groupEnded(proc.pid, Date.now() + 10_000);
    clearTimeout(timer);
  };

  try {
    await start();
  } catch (error) {
    // No handle is returned, so nothing else could ever remove what this call made.
    process.off("exit", killOnExit);
    await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
    await schemas?.dropAll().catch(() => undefined);
    throw error;
  }
  return {
    mode: "spawn",
    description: `spawn: ${options.command}`,
    address: () => address,
    security: options.security ?? PLAINTEXT,
    async restart(restartOptions) {
      await stopProcess(restartOptions.kill ? "SIGKILL" : "SIGTERM");
      if (restartOptions.wipeData) {
        dataDir = await mkdtemp(join(tmpdir(), "continuity-conformance-data-"));
        dataDirs.push(dataDir);
      }
      await start();
    },
    spawnSibling: (env) => spawnTarget({ ...options, env: { ...options.env, ...env } }),
    output: () => output,
    crashed: () => crashed || (child !== undefined && child.exitCode !== null && !expectedExit),
    async stop() {
      await stopProcess("SIGTERM");
      process.off("exit", killOnExit);
      await Promise.all(dataDirs.map((dir) => rm(dir, { recursive: true, force: true })));
      await schemas?.dropAll();
    },
  };
}

/** Resolves once no live process is left in process group `pgid`, or at `deadline`. */
async function groupEnded(pgid: number, deadline: number): Promise<void> {
  while (groupAlive(pgid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    // ESRCH: no process is left in it; EPERM: one is, of another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  // A member that exited but was not reaped yet (a zombie, where no init reaps orphans) still
  // takes a signal; on Linux its state says so.
  if (process.platform !== "linux") return true;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses, so read after the last ")".
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(pgrp) === pgid && state !== "Z") return true;
  }
  return false;
}

function killGroup(proc: ChildProcess, signal: NodeJS.Signals): void {
  try {
    // The command runs under a shell; signalling the group reaches the server behind it.
    if (proc.pid !== undefined) process.kill(-proc.pid, signal);
  } catch {
    proc.kill(signal);
  }
}

/** Servers may print a wildcard host; the suite connects over loopback then. */
export function normalizeAddress(address: string): string {
  const match = /^(.*):(\d+)$/.exec(address);
  if (match === null) throw new Error(`ready line names no host:port: "${address}"`);
  const host = match[1]!;
  const wildcard = host === "0.0.0.0" || host === "[::]" || host === "::" || host === "";
  return `${wildcard ? "127.0.0.1" : host}:${match[2]}`;
}
