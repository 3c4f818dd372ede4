import type { CaseResult, CaseStatus } from "../runner/run-suite.js";

/** Where progress goes: stderr, so that stdout keeps only case lines and the summary. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(text: string): unknown;
}

/** What a run tells the progress display. */
export interface ProgressReporter {
  plan(total: number): void;
  caseStarted(id: string): void;
  caseFinished(result: CaseResult): void;
  /** Runs `print` (which writes to the terminal) with the progress line out of its way. */
  around(print: () => void): void;
  /** Removes the line (TTY) and stops the timer; call before the summary. */
  stop(): void;
}

/** Options of {@link createProgressReporter}. */
export interface ProgressOptions {
  /** Plain mode: one line this often (default 10 s). TTY mode redraws every second. */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

/**
 * A progress line while the suite runs. On a terminal it is a single line, redrawn in place
 * (carriage return, clear to end of line) when a case starts or ends and once a second; other
 * output is printed above it. Elsewhere (CI logs, files) redrawing would pile up, so it writes a
 * plain line every `intervalMs` instead.
 */
export function createProgressReporter(stream: ProgressStream, options: ProgressOptions = {}): ProgressReporter {
  const now = options.now ?? Date.now;
  const tty = stream.isTTY === true;
  const started = now();
  const running = new Map<string, number>();
  const counts = new Map<CaseStatus, number>();
  let total: number | undefined;
  let done = 0;
  let shown = false;
  let stopped = false;

  const line = (): string => {
    const elapsed = Math.round((now() - started) / 1000);
    const statusText = (["pass", "fail", "warn", "error", "skip", "expected-fail", "unexpected-pass"] as const)
      .filter((status) => counts.has(status))
      .map((status) => `${counts.get(status)} ${status}`)
      .join(", ");
    // The case running longest is the one a person watching waits for.
    const oldest = [...running.entries()].sort((a, b) => a[1] - b[1])[0];
    const waiting = oldest === undefined ? "" : ` · running ${running.size}: ${oldest[0]} ${Math.round((now() - oldest[1]) / 1000)}s`;
    return `conformance ${done}/${total ?? "?"} done${statusText === "" ? "" : ` (${statusText})`} · ${elapsed}s${waiting}`;
  };

  const draw = (): void => {
    if (stopped || !tty) return;
    // A terminal that reports no width (0) gets a usual one.
    const width = Math.max(20, (stream.columns === undefined || stream.columns <= 0 ? 100 : stream.columns) - 1);
    const text = line();
    stream.write(`\r\x1b[2K${text.length > width ? `${text.slice(0, width - 1)}…` : text}`);
    shown = true;
  };
  const erase = (): void => {
    if (tty && shown) stream.write("\r\x1b[2K");
    shown = false;
  };

  const timer = setInterval(
    () => {
      if (tty) draw();
      else if (!stopped) stream.write(`${line()}\n`);
    },
    tty ? 1000 : (options.intervalMs ?? 10_000),
  );
  timer.unref();

  return {
    plan(count) {
      total = count;
      draw();
    },
    caseStarted(id) {
      running.set(id, now());
      draw();
    },
    caseFinished(result) {
      running.delete(result.id);
      done += 1;
      counts.set(result.status, (counts.get(result.status) ?? 0) + 1);
      draw();
    },
    around(print) {
      erase();
      print();
      draw();
    },
    stop() {
      erase();
      stopped = true;
      clearInterval(timer);
    },
  };
}
