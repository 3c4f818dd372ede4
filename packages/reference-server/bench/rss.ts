import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

// Resident memory of another process (a bench server), read from outside so that sampling
// costs the server nothing: /proc on Linux, `ps` elsewhere.

/** The resident set size of `pid` in bytes. */
export function rssOf(pid: number): number {
  if (process.platform === "linux") {
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    if (match?.[1] === undefined) throw new Error(`no VmRSS for process ${pid}`);
    return Number(match[1]) * 1024;
  }
  return Number(execFileSync("ps", ["-o", "rss=", "-p", String(pid)], { encoding: "utf8" }).trim()) * 1024;
}

/** What a process's RSS did while something ran, and the CPU time it spent meanwhile. */
export interface RssGrowth {
  readonly baselineBytes: number;
  readonly peakBytes: number;
  readonly growthBytes: number;
  /** User + system CPU seconds of the process (all its threads) over the work; NaN where unknown. */
  readonly cpuSeconds: number;
}

/**
 * CPU seconds `pid` has used so far (user + system, all threads), from /proc on Linux; NaN
 * elsewhere. Unlike wall time it does not grow when other processes load the machine.
 */
export function cpuSecondsOf(pid: number): number {
  if (process.platform !== "linux") return Number.NaN;
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** USER_HZ, the unit of /proc/<pid>/stat times: 100 on every Linux that Node runs on. */
const CLOCK_TICKS = 100;

/** Runs `work` while sampling `pid`'s RSS every `intervalMs`; growth is peak minus the value before. */
export async function withRssSampling<T>(pid: number, work: () => Promise<T>, intervalMs = 20): Promise<{ result: T; rss: RssGrowth }> {
  const baselineBytes = rssOf(pid);
  const cpuBefore = cpuSecondsOf(pid);
  let peakBytes = baselineBytes;
  const sample = (): void => {
    try {
      peakBytes = Math.max(peakBytes, rssOf(pid));
    } catch {
      // The process is gone; the work will say why.
    }
  };
  const timer = setInterval(sample, intervalMs);
  try {
    const result = await work();
    sample();
    return { result, rss: { baselineBytes, peakBytes, growthBytes: peakBytes - baselineBytes, cpuSeconds: cpuSecondsOf(pid) - cpuBefore } };
  } finally {
    clearInterval(timer);
  }
}
