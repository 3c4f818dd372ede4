import { PassThrough, Readable } from "node:stream";
import type { CliIo } from "../../src/context.js";
import { runCli } from "../../src/cli.js";

/** What one in-process run of the CLI printed, and its exit status. */
export interface CliRun {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
  /** stdout as text. */
  readonly out: string;
}

/** Runs the CLI in this process with captured streams (not terminals: progress comes as plain lines). */
export async function cli(
  argv: readonly string[],
  options: {
    readonly stdin?: Buffer;
    readonly stdoutIsTerminal?: boolean;
    /** Sends Ctrl-C (once) as soon as stderr so far satisfies this. */
    readonly interruptWhen?: (stderr: string) => boolean;
  } = {},
): Promise<CliRun> {
  const stdout = Object.assign(new PassThrough(), { isTTY: options.stdoutIsTerminal === true });
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on("data", (chunk: Buffer) => out.push(chunk));
  const handlers = new Set<() => void>();
  let interrupted = false;
  stderr.on("data", (chunk: Buffer) => {
    err.push(chunk);
    if (!interrupted && options.interruptWhen?.(Buffer.concat(err).toString("utf8")) === true) {
      interrupted = true;
      for (const handler of [...handlers]) handler();
    }
  });
  const io: CliIo = {
    stdin: Readable.from(options.stdin === undefined ? [] : [options.stdin]),
    stdout,
    stderr,
    onInterrupt(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
  };
  const code = await runCli(argv, io);
  const stdoutBytes = Buffer.concat(out);
  return { code, stdout: stdoutBytes, stderr: Buffer.concat(err).toString("utf8"), out: stdoutBytes.toString("utf8") };
}
