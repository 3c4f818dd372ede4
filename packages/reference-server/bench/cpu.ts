import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

// CPU time of another process (a bench server), read from outside so that sampling costs the
// server nothing. On a machine shared with other work, wall-clock time measures the
// neighbours as much as the server; the CPU a server spent per call does not.

let ticksPerSecond: number | undefined;

/** User plus system CPU seconds `pid` has used so far, all its threads together. */
export function cpuSecondsOf(pid: number): number {
  if (process.platform === "linux") {
    ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces; fields after its closing parenthesis do not.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  }
  const time = execFileSync("ps", ["-o", "time=", "-p", String(pid)], { encoding: "utf8" }).trim();
  return time.split(":").reduce((total, part) => total * 60 + Number(part), 0);
}

/** Runs `work` and returns its result with the CPU seconds `pid` spent meanwhile. */
export async function withCpu<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; cpuSeconds: number }> {
  const before = cpuSecondsOf(pid);
  const result = await work();
  return { result, cpuSeconds: cpuSecondsOf(pid) - before };
}
