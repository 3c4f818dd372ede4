/**
 * What a command runs with: the process's streams (or a test's), and how to report. Commands
 * print their result once, at the end: text for people, or one JSON document under `--json`.
 */
import type { Writable } from "node:stream";
import { createProgress, type Progress, type ProgressMode, type ProgressState } from "./ui/progress.js";
import { toJsonText } from "./ui/format.js";

/** A writable that may be a terminal. */
export type OutputStream = Writable & { readonly isTTY?: boolean };

/** The process around a command. `main.ts` passes the real one. */
export interface CliIo {
  readonly stdin: NodeJS.ReadableStream & { readonly isTTY?: boolean };
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  /** Calls `handler` on Ctrl-C (SIGINT) or SIGTERM until the returned function is called. */
  onInterrupt(handler: () => void): () => void;
}

/** Flags every command takes. */
export interface OutputFlags {
  readonly json?: boolean;
  readonly quiet?: boolean;
}

/** How a command reports. */
export interface Reporter {
  readonly json: boolean;
  /** Where results go: stdout, or stderr when stdout carries a bundle. */
  readonly out: OutputStream;
  /** A progress display; `from` is what was done before it started. */
  progress(label: string, from?: ProgressState): Progress;
  /** A line of information for people, on stderr; silent under `--json` or `--quiet`. */
  note(line: string): void;
  /** The command's result: `value` as JSON under `--json`, else `text` (unless `--quiet`). */
  result(value: object, text: string): void;
}

/** Creates the reporter of one command. `stdoutTaken`: stdout carries a bundle. */
export function createReporter(io: CliIo, flags: OutputFlags, stdoutTaken = false): Reporter {
  const json = flags.json === true;
  const quiet = flags.quiet === true;
  const out = stdoutTaken ? io.stderr : io.stdout;
  const mode: ProgressMode = json || quiet ? "off" : io.stderr.isTTY === true ? "bar" : "lines";
  return {
    json,
    out,
    progress: (label, from) => createProgress(label, mode, io.stderr, from),
    note(line) {
      if (!json && !quiet) io.stderr.write(`${line}\n`);
    },
    result(value, text) {
      if (json) out.write(`${toJsonText({ ok: true, ...value })}\n`);
      else if (!quiet) out.write(`${text}\n`);
    },
  };
}
