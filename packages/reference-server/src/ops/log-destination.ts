import type { Writable } from "node:stream";

/** Options of {@link createLogDestination}. */
export interface LogDestinationOptions {
  /** Bytes of log lines that may wait for a slow reader before new lines are dropped; default 4 MiB. */
  readonly maxBufferedBytes?: number;
  /** Told how many lines were dropped, once the reader has caught up again. */
  readonly onDropped?: (lines: number) => void;
}

/** A pino destination (anything with `write(line)`) that a log reader can never block. */
export interface LogDestination {
  write(line: string): void;
  /**
   * Resolves once every accepted line is handed to the OS, the reader is gone, or `timeoutMs`
   * passed, whichever is first: how a shutdown gives its last lines a chance without waiting
   * on a reader that may never read.
   */
  settle(timeoutMs: number): Promise<void>;
}

/**
 * Writes log lines to `stream` (the server passes `process.stderr`) through the event loop,
 * never with a blocking write, so that whatever the reader does, calls and shutdown go on:
 *
 * - a reader that is gone (EPIPE, a closed descriptor) ends logging for good;
 * - a reader that is slow or stalled gets at most `maxBufferedBytes` queued; lines past that
 *   are dropped and counted, and `onDropped` hears the count once the queue has drained.
 *
 * pino's own file destination retries a failed synchronous flush forever and writes from the
 * libuv thread pool, where one write blocked on a stalled pipe holds `process.exit` too.
 * On Linux, `process.stderr` on a pipe or socket is a non-blocking libuv stream, which is
 * what makes this safe; on a file it writes synchronously, which a file never stalls.
 */
export function createLogDestination(stream: Writable, options: LogDestinationOptions = {}): LogDestination {
  const maxBufferedBytes = options.maxBufferedBytes ?? 4 * 1024 * 1024;
  let gone = false;
  let dropped = 0;
  stream.on("error", () => {
    gone = true;
  });
  stream.on("drain", () => {
    if (dropped === 0 || gone) return;
    const lines = dropped;
    dropped = 0;
    options.onDropped?.(lines);
  });
  const idle = () => gone || stream.destroyed || stream.writableLength === 0;
  return {
    write(line) {
      if (gone || stream.destroyed) return;
      if (stream.writableLength >= maxBufferedBytes) {
        dropped += 1;
        return;
      }
      stream.write(line);
    },
    settle(timeoutMs) {
      if (idle()) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          stream.off("drain", check);
          stream.off("error", done);
          resolve();
        };
        const check = () => {
          if (idle()) done();
        };
        const timer = setTimeout(done, timeoutMs);
        timer.unref();
        stream.on("drain", check);
        stream.on("error", done);
      });
    },
  };
}
