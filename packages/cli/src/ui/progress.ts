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

/** Creates a progress display of `label` on `stream`. */
export function createProgress(label: string, mode: ProgressMode, stream: Writable): Progress {
  if (mode === "off") return { update() {}, stop() {} };
  const started = Date.now();
  const rate = (bytes: number) => formatBytes(bytes / Math.max((Date.now() - started) / 1000, 0.001)) + "/s";

  if (mode === "lines") {
    let last = started;
    let stopped = false;
    const line = (state: ProgressState, done: boolean) => {
      const of = state.totalRecords === undefined || done ? "" : ` of ~${Math.max(state.totalRecords, state.records)}`;
      const eta = done ? ` in ${formatDuration(Date.now() - started)}` : etaText(started, state);
      const note = state.note === undefined ? "" : `, ${state.note}`;
      stream.write(`${label}: ${state.records}${of} records, ${formatBytes(state.bytes)}, ${rate(state.bytes)}${eta}${note}\n`);
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
  const payload = (state: ProgressState) => ({ size: formatBytes(state.bytes), rate: rate(state.bytes), note: state.note === undefined ? "" : ` | ${state.note}` });
  const total = (state: ProgressState) => Math.max(state.totalRecords ?? state.records, state.records, 1);
  return {
    update(state) {
      if (stopped) return;
      if (!startedBar) {
        bar.start(total(state), state.records, payload(state));
        startedBar = true;
        return;
      }
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

function etaText(started: number, state: ProgressState): string {
  if (state.totalRecords === undefined || state.records === 0 || state.totalRecords <= state.records) return "";
  const elapsed = Date.now() - started;
  return `, ETA ${formatDuration((elapsed / state.records) * (state.totalRecords - state.records))}`;
}
