// Defect 5 of issue 10: with the log reader gone, SIGTERM never ended the process (it spun on
// EPIPE in the logger's exit flush, and a second SIGTERM was ignored). Shutdown must finish
// within its drain time whatever the log destination does.
import { execFileSync } from "node:child_process";
import { constants } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChannel, createClient } from "nice-grpc";
import { HealthDefinition } from "nice-grpc-server-health";
import { afterEach, describe, expect, it } from "vitest";
import { spawnServer, type ServerProcess, type SpawnOptions } from "./server-process.js";

/** main.ts's DRAIN_TIMEOUT_MS: the longest a shutdown may take. */
const DRAIN_TIMEOUT_MS = 10_000;

/** The exit code, or "still running" if the process outlived `ms`. */
async function exitWithin(server: ServerProcess, ms: number): Promise<number | string> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve("still running"), ms)));
  try {
    return await Promise.race([server.exited(), late]);
  } finally {
    clearTimeout(timer);
  }
}

describe("shutdown whatever the log reader does", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  async function start(options: SpawnOptions, dataDir: string): Promise<{ server: ServerProcess; address: string }> {
    const server = spawnServer(["--log-level", "info"], { CONTINUITY_LISTEN: "127.0.0.1:0", CONTINUITY_DATA_DIR: dataDir }, options);
    cleanups.unshift(async () => {
      server.kill();
      await server.exited();
    });
    return { server, address: await server.ready() };
  }

  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), "continuity-shutdown-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  };

  it("exits 0 within the drain time after SIGTERM when the reader of its output (logs included) is gone", async () => {
    const { server } = await start({ stderrToStdout: true }, await tempDir());
    server.child.stdout?.destroy();
    server.child.kill("SIGTERM");
    expect(await exitWithin(server, DRAIN_TIMEOUT_MS)).toBe(0);
  });

  it("keeps serving while its log reader stalls, then exits within the drain time after SIGTERM", async () => {
    // Logs go into a pipe (64 KiB) whose reader is open but never reads.
    const dir = await tempDir();
    const fifo = join(dir, "log.fifo");
    execFileSync("mkfifo", [fifo]);
    const reader = await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    cleanups.push(() => reader.close());
    const { server, address } = await start({ stderrPath: fifo }, join(dir, "data"));
    // Each call logs a line of about 200 bytes: this fills the pipe a few times over.
    const channel = createChannel(address);
    try {
      const health = createClient(HealthDefinition, channel);
      for (let round = 0; round < 8; round++) {
        await Promise.all(Array.from({ length: 250 }, () => health.check({ service: "" }, { signal: AbortSignal.timeout(5_000) })));
      }
    } finally {
      channel.close();
    }
    server.child.kill("SIGTERM");
    expect(await exitWithin(server, DRAIN_TIMEOUT_MS)).toBe(0);
  }, 60_000);
});
