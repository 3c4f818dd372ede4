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

/** What a process's RSS did while something ran. */
export interface RssGrowth {
  readonly baselineBytes: number;
  readonly peakBytes: number;
  readonly growthBytes: number;
}

/** Runs `work` while sampling `pid`'s RSS every `intervalMs`; growth is peak minus the value before. */
export async function withRssSampling<T>(pid: number, work: () => Promise<T>, intervalMs = 20): Promise<{ result: T; rss: RssGrowth }> {
  const baselineBytes = rssOf(pid);
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
    return { result, rss: { baselineBytes, peakBytes, growthBytes: peakBytes - baselineBytes } };
  } finally {
    clearInterval(timer);
  }
}
