/**
 * Progress of long work (export, import, verify, migrate): a bar with records, bytes, rate and
 * ETA on a terminal, a plain line every few seconds when stderr is a file or a pipe (CI logs),
 * nothing under `--json` or `--quiet`. Always on stderr, so stdout stays free for a bundle or a
 * result.
 */
import type { Writable } from "node:stream";
import cliProgress from "cli-progress";
import { formatBytes, formatDuration } from "./format.js";

/** How progress is shown. */
export type ProgressMode = "bar" | "lines" | "off";

/** Where the work is; `total` is an estimate and may be passed. */
export interface ProgressState {
  readonly records: number;
  readonly totalRecords?: number | undefined;
  readonly bytes: number;
  /** A short note after the numbers, e.g. `lag 12 deltas, COPYING`. */
  readonly note?: string | undefined;
}

/** One progress display. */
export interface Progress {
  update(state: ProgressState): void;
  /**
   * Ends the display. With `final` (the work succeeded) a last line is printed in `lines`
   * mode; without it (the work failed, and its error will be the last line) none is.
   * Calls after the first do nothing.
   */
  stop(final?: ProgressState): void;
}

/** Time between two plain progress lines. */
const LINE_INTERVAL_MS = 2_000;
/**
 * Time between two updates of the bar. Commands report every record; the bar's ETA averages
 * its last `etaBuffer` updates, so they must be spread over seconds, not microseconds.
 */
const BAR_UPDATE_MS = 100;

/**
 * Creates a progress display of `label` on `stream`. Rate and ETA count from `from`: what
 * was already done when the display started (a migration followed again after Ctrl-C).
 */
export function createProgress(label: string, mode: ProgressMode, stream: Writable, from?: ProgressState): Progress {
  if (mode === "off") return { update() {}, stop() {} };
  const started = Date.now();
  const base = from ?? { records: 0, bytes: 0 };
  const rate = (state: ProgressState) => formatBytes((state.bytes - base.bytes) / Math.max((Date.now() - started) / 1000, 0.001)) + "/s";

  if (mode === "lines") {
    let last = started;
    let stopped = false;
    const line = (state: ProgressState, done: boolean) => {
      const of = state.totalRecords === undefined || done ? "" : ` of ~${Math.max(state.totalRecords, state.records)}`;
      const eta = done ? ` in ${formatDuration(Date.now() - started)}` : etaText(started, base, state);
      const note = state.note === undefined ? "" : `, ${state.note}`;
      stream.write(`${label}: ${state.records}${of} records, ${formatBytes(state.bytes)}, ${rate(state)}${eta}${note}\n`);
    };
    return {
      update(state) {
        const now = Date.now();
        if (now - last < LINE_INTERVAL_MS) return;
        last = now;
        line(state, false);
      },
      stop(final) {
        if (stopped) return;
        stopped = true;
        if (final !== undefined) line(final, true);
      },
    };
  }

  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} [{bar}] {percentage}% | {value}/{total} records | {size} | {rate} | ETA {eta_formatted}{note}`,
      hideCursor: true,
      barsize: 24,
      etaBuffer: 50,
      fps: 10,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  let startedBar = false;
  let stopped = false;
  let lastPush = 0;
  const payload = (state: ProgressState) => ({ size: formatBytes(state.bytes), rate: rate(state), note: state.note === undefined ? "" : ` | ${state.note}` });
  const total = (state: ProgressState) => Math.max(state.totalRecords ?? state.records, state.records, 1);
  return {
    update(state) {
      if (stopped) return;
      const now = Date.now();
      if (!startedBar) {
        bar.start(total(state), state.records, payload(state));
        startedBar = true;
        lastPush = now;
        return;
      }
      if (now - lastPush < BAR_UPDATE_MS) return;
      lastPush = now;
      bar.setTotal(total(state));
      bar.update(state.records, payload(state));
    },
    stop(final) {
      if (!startedBar || stopped) return;
      stopped = true;
      if (final !== undefined) {
        bar.setTotal(total(final));
        bar.update(final.records, payload(final));
      }
      bar.stop();
    },
  };
}

function etaText(started: number, base: ProgressState, state: ProgressState): string {
  const done = state.records - base.records;
  if (state.totalRecords === undefined || done <= 0 || state.totalRecords <= state.records) return "";
  const elapsed = Date.now() - started;
  return `, ETA ${formatDuration((elapsed / done) * (state.totalRecords - state.records))}`;
}
