import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

// Reads a V8 `.cpuprofile` (node --cpu-prof) and names where the time went: per function,
// the share of samples in which it ran itself (self) and in which it was on the stack
// (total). Enough to say what bounds a path without opening a profiler UI; for the full
// picture load the file into Chrome DevTools or speedscope.
//
//   node --import tsx bench/profile-summary.ts <file.cpuprofile> [top] [within-function] [until-function]

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One function's share of a profile. */
export interface ProfileRow {
  readonly fn: string;
  readonly selfShare: number;
  readonly totalShare: number;
}

const NOT_WORK = new Set(["(idle)", "(program)", "(root)"]);

/** Shortens a script URL to `package/path` or a path inside this repository. */
function where(url: string): string {
  if (url === "") return "";
  const path = url.startsWith("file://") ? fileURLToPath(url) : url;
  const pnpm = /node_modules\/\.pnpm\/[^/]+\/node_modules\/(.+)$/.exec(path);
  if (pnpm?.[1] !== undefined) return pnpm[1];
  const repo = /\/(packages\/.+)$/.exec(path);
  return repo?.[1] ?? path;
}

/** A profile's busy time, its hottest functions, and this repository's functions that hold the most time. */
export interface ProfileSummary {
  /** The time the summary covers (the whole profile, or the `within` window). */
  readonly windowSeconds: number;
  /** Of that, the time the main thread was running code (not idle): near the window = CPU-bound. */
  readonly busySeconds: number;
  readonly bySelf: readonly ProfileRow[];
  /** Functions of `packages/` by total time: which of our paths the self time is spent under. */
  readonly ownByTotal: readonly ProfileRow[];
}

/**
 * The `top` functions by self time, with their total time, as shares of the samples in which
 * the process was working (idle and the profiler's own bookkeeping left out), counting only
 * the window in which `within` (a function name) ran, when given.
 */
export async function summarizeProfile(
  file: string,
  options: { readonly top?: number; readonly within?: string | undefined; readonly until?: string | undefined } = {},
): Promise<ProfileSummary> {
  const top = options.top ?? 15;
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const keyOf = (node: ProfileNode): string => {
    const { functionName, url, lineNumber } = node.callFrame;
    const at = where(url);
    // Lines of TypeScript run through tsx are lines of the transpiled code: name the file only.
    const line = at === "" || at.endsWith(".ts") ? "" : `:${lineNumber + 1}`;
    return `${functionName === "" ? "(anonymous)" : functionName}${at === "" ? "" : ` ${at}${line}`}`;
  };
  const stackOf = (id: number): ProfileNode[] => {
    const stack: ProfileNode[] = [];
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.push(byId.get(at)!);
    return stack;
  };
  // The window: from the first to the last sample with `within` on the stack (the call being
  // profiled), so that start-up and shutdown do not count.
  let first = 0;
  let last = profile.samples.length - 1;
  if (options.within !== undefined) {
    const inside = (i: number) => stackOf(profile.samples[i]!).some((n) => n.callFrame.functionName === options.within);
    while (first <= last && !inside(first)) first++;
    while (last >= first && !inside(last)) last--;
    if (first > last) throw new Error(`${file}: no sample inside ${options.within}`);
  }
  // `until`: the window ends before the first sample, after its start, with `until` on the
  // stack (fan-out: before the subscriptions are cancelled, which is not what it measures).
  if (options.until !== undefined) {
    for (let i = first; i <= last; i++) {
      if (stackOf(profile.samples[i]!).some((n) => n.callFrame.functionName === options.until)) {
        last = i - 1;
        break;
      }
    }
  }
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let busyMicros = 0;
  let windowMicros = 0;
  for (let i = first; i <= last; i++) {
    const id = profile.samples[i]!;
    const node = byId.get(id)!;
    const micros = profile.timeDeltas[i] ?? 0;
    windowMicros += micros;
    if (NOT_WORK.has(node.callFrame.functionName)) continue;
    busyMicros += micros;
    const own = keyOf(node);
    self.set(own, (self.get(own) ?? 0) + micros);
    // A recursive function counts once per sample.
    const seen = new Set<string>();
    for (const frame of stackOf(id)) {
      const key = keyOf(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      total.set(key, (total.get(key) ?? 0) + micros);
    }
  }
  const row = (fn: string): ProfileRow => ({ fn, selfShare: (self.get(fn) ?? 0) / busyMicros, totalShare: (total.get(fn) ?? 0) / busyMicros });
  const ranked = (values: Map<string, number>, keep: (fn: string) => boolean) =>
    [...values.entries()]
      .filter(([fn]) => keep(fn))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn]) => row(fn));
  return { windowSeconds: windowMicros / 1e6, busySeconds: busyMicros / 1e6, bySelf: ranked(self, () => true), ownByTotal: ranked(total, (fn) => fn.includes(" packages/")) };
}

/** The rows as text, one function a line. */
export function formatProfile(title: string, summary: ProfileSummary): string {
  const line = (r: ProfileRow): string => `  ${(r.selfShare * 100).toFixed(1).padStart(5)} % ${(r.totalShare * 100).toFixed(1).padStart(5)} %  ${r.fn}`;
  return [
    `${title}: ${summary.busySeconds.toFixed(1)} s busy of ${summary.windowSeconds.toFixed(1)} s (self % / total % of busy samples)`,
    " hottest by self time:",
    ...summary.bySelf.map(line),
    " this repository's functions by total time:",
    ...summary.ownByTotal.map(line),
  ].join("\n");
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, top, within, until] = process.argv.slice(2);
  if (file === undefined) {
    process.stderr.write("usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [top] [within-function] [until-function]\n");
    process.exit(2);
  }
  process.stdout.write(`${formatProfile(file, await summarizeProfile(file, { top: Number(top ?? 15), within, until }))}\n`);
}
