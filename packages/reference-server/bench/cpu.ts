import { cpuSecondsOf } from "./rss.js";

// CPU time of another process (a bench server) over one piece of work. On a machine shared
// with other work, wall-clock time measures the neighbours as much as the server; the CPU a
// server spent per call does not.

/** Runs `work` and returns its result with the CPU seconds `pid` spent meanwhile (NaN off Linux). */
export async function withCpu<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; cpuSeconds: number }> {
  const before = cpuSecondsOf(pid);
  const result = await work();
  return { result, cpuSeconds: cpuSecondsOf(pid) - before };
}
