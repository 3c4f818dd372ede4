// Proves the suite's strength: runs it against the reference server once per deliberate fault
// ("mutant") and requires every one to be caught by at least one failing MUST case (a mutant
// of a SHOULD requirement: by a case of that requirement that warns, see Mutant.should). A suite
// that lets a broken server pass is worse than none. Each mutant is a few source edits
// (conformance/mutants/reference-server/<name>.ts) applied to a copy of the server's `src`,
// the way mutation tools work, so the shipped server carries no switch for any of them; the
// copy is bundled into one file (runner/server-bundle.ts) and started from it.
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rmdir, stat, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import type { KnownFailures } from "./runner/known-failures.js";
import { ALL_CASES } from "./cases/index.js";
import { copySources, loadMutants, mutateSources, type Mutant, type SourceCopy } from "./runner/mutant.js";
import { runPool, type CaseResult, type SuiteReport } from "./runner/run-suite.js";
import { bundledServerCommand, bundleServer } from "./runner/server-bundle.js";
import { REFERENCE_SERVER, REPO_ROOT, runConformance } from "./run.js";

/** The reference server's mutants: one definition file per mutant. */
export const REFERENCE_SERVER_MUTANTS = join(REPO_ROOT, "conformance", "mutants", "reference-server");
/** The sources a mutant edits; its `file` paths are relative to this folder. */
export const REFERENCE_SERVER_SRC = join(REFERENCE_SERVER.cwd, "src");
/**
 * Where the copies of the server's `src` go (gitignored): inside its package, so that a
 * copy's imports (`@continuity/sdk/gen`, `better-sqlite3`, …) resolve through its node_modules.
 */
const COPIES_DIR = join(REFERENCE_SERVER.cwd, ".mutants");
/**
 * Where the unmutated server is bundled for the baseline (see {@link baselineServer}), inside
 * the server's package so that its npm dependencies resolve.
 */
const BASELINE_BUNDLE = join(COPIES_DIR, "baseline", "main.mjs");

/**
 * The unmutated server, bundled as each mutant is (runner/server-bundle.ts), and the command
 * that starts it: what the baseline run must be made with, so that every mutant is compared
 * with exactly the build it differs from by its edits. `pnpm test` makes that run in
 * conformance/test/reference-server.test.ts.
 */
export async function baselineServer(): Promise<{ readonly spawn: string; readonly spawnCwd: string }> {
  return { spawn: await bundleServer(REFERENCE_SERVER_SRC, BASELINE_BUNDLE, REFERENCE_SERVER.cwd), spawnCwd: REFERENCE_SERVER.cwd };
}

/** Where the outcomes of the last run go (gitignored), beside the suite's reports. */
const MUTANT_REPORT_DIR = join(REPO_ROOT, ".artifacts", "conformance");

/** How one mutant run ended. */
export interface MutantOutcome {
  readonly mutant: string;
  readonly area: string;
  readonly caught: boolean;
  /** The cases that caught it (the first few), or why the run could not judge. */
  readonly evidence: string;
  /** The ids of every case that caught it: what its `caughtBy` may name. */
  readonly failedCases: readonly string[];
  readonly durationMs: number;
}

/**
 * The cases that catch a mutant: failing MUST cases, and for a mutant of SHOULD requirements
 * (`Mutant.should`) also its cases that warn.
 */
function catchingFailures(report: SuiteReport, should: readonly string[] = []): CaseResult[] {
  return report.results.filter((result) => (result.status === "fail" && result.level === "MUST") || (result.status === "warn" && result.requirements.some((id) => should.includes(id))));
}

/** Only the cases proving one of `should`, as a `--filter` would select them. */
function casesProving(should: readonly string[]): RegExp {
  const ids = ALL_CASES.filter((c) => c.requirements.some((id) => should.includes(id))).map((c) => c.id.replaceAll(".", "\\."));
  return new RegExp(`^(${ids.join("|")})$`);
}

/**
 * Runs the suite once against the server started by `spawn` from the server's package
 * directory. Cases that already fail without any mutant are passed as known failures: they
 * cannot prove that a mutant was caught, and they must not stop a bailing run before the
 * cases that can.
 */
async function runAgainst(
  label: string,
  spawn: string,
  options: { readonly area?: string; readonly should?: readonly string[]; readonly caughtBy?: readonly string[]; readonly concurrency: number; readonly baselineFailures?: KnownFailures },
): Promise<MutantOutcome & { failures: CaseResult[]; caseDurations: ReadonlyMap<string, number> }> {
  const started = Date.now();
  const area = options.area ?? "";
  try {
    const { report } = await runConformance({
      spawn,
      spawnCwd: REFERENCE_SERVER.cwd,
      concurrency: options.concurrency,
      bail: options.area !== undefined,
      knownFailures: options.baselineFailures ?? new Map(),
      ...(options.area === undefined ? {} : { priorityArea: options.area }),
      ...(options.should === undefined ? {} : { filter: casesProving(options.should) }),
      ...(options.caughtBy === undefined ? {} : { first: options.caughtBy }),
    });
    // The baseline (no area) counts every warn too: a SHOULD case that warns without any
    // mutant cannot catch one.
    const failures = options.area === undefined ? report.results.filter((r) => (r.status === "fail" && r.level === "MUST") || r.status === "warn") : catchingFailures(report, options.should);
    const evidence = failures.length > 0 ? failures.slice(0, 3).map((f) => `${f.id}: ${(f.message ?? "").split("\n")[0]}`).join(" | ") : report.errors.join("; ") || "no MUST case failed";
    const caseDurations = new Map(report.results.map((r) => [r.id, r.durationMs]));
    return { mutant: label, area, caught: failures.length > 0, evidence, failedCases: failures.map((f) => f.id), durationMs: Date.now() - started, failures, caseDurations };
  } catch (error) {
    return { mutant: label, area, caught: false, evidence: `run error: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`, failedCases: [], durationMs: Date.now() - started, failures: [], caseDurations: new Map() };
  }
}

/**
 * Applies `mutant` to `copy` (a copy of the server's `src` inside its package), runs the suite
 * against the server started from it, and reverts the copy. A mutant that no longer applies
 * is not caught: its evidence says why.
 */
export async function runMutant(mutant: Mutant, copy: SourceCopy, concurrency: number, baselineFailures: KnownFailures): Promise<MutantOutcome> {
  try {
    await copy.apply(mutant);
  } catch (error) {
    return { mutant: mutant.name, area: mutant.area, caught: false, evidence: `run error: ${(error as Error).message}`, failedCases: [], durationMs: 0 };
  }
  try {
    let spawn: string;
    try {
      spawn = await bundleServer(copy.dir, join(copy.dir, ".bundle", "main.mjs"), REFERENCE_SERVER.cwd);
    } catch (error) {
      return { mutant: mutant.name, area: mutant.area, caught: false, evidence: `run error: bundling: ${(error as Error).message.split("\n")[0]}`, failedCases: [], durationMs: 0 };
    }
    const { mutant: name, area, caught, evidence, failedCases, durationMs } = await runAgainst(mutant.name, spawn, {
      area: mutant.area,
      ...(mutant.should === undefined ? {} : { should: mutant.should }),
      ...(mutant.caughtBy === undefined ? {} : { caughtBy: mutant.caughtBy }),
      concurrency,
      baselineFailures,
    });
    return { mutant: name, area, caught, evidence, failedCases, durationMs };
  } finally {
    await copy.revert();
  }
}

/**
 * A JSON report (`--report-json`) of the whole suite against the unmutated reference server
 * in spawn mode, as the baseline, when it is newer than every file of the server's and the
 * suite's sources: `pnpm test` has just made one (conformance/test/reference-server.test.ts),
 * and running the same suite again would only cost minutes. Anything else is not reused.
 */
async function reusableBaseline(file: string): Promise<Baseline | undefined> {
  let written: number;
  let report: { format?: unknown; mode?: unknown; target?: unknown; cases?: { id: string; status: string; level: string; message: string | null; durationMs?: number }[]; durationMs?: number };
  try {
    written = (await stat(file)).mtimeMs;
    report = JSON.parse(await readFile(file, "utf8")) as typeof report;
  } catch {
    console.log(`baseline: no report at ${file}; running it`);
    return undefined;
  }
  if (report.format !== "continuity-conformance-report/1" || report.mode !== "spawn" || !Array.isArray(report.cases)) {
    console.log(`baseline: ${file} is not a spawn-mode conformance report; running it`);
    return undefined;
  }
  if (report.target !== `spawn: ${bundledServerCommand(BASELINE_BUNDLE)}`) {
    console.log(`baseline: ${file} judged ${String(report.target)}, not the bundled server the mutants are built as; running it`);
    return undefined;
  }
  // What the run judged: the server and the workspace packages it runs from source, the suite, the spec.
  const judged = [REFERENCE_SERVER_SRC, ...["packages/sdk/src", "packages/bundle/src", "conformance/src", "docs/spec"].map((dir) => join(REPO_ROOT, dir))];
  const newest = Math.max(...(await Promise.all(judged.map(newestMtime))));
  if (newest > written) {
    console.log(`baseline: ${file} is older than the sources; running it`);
    return undefined;
  }
  const failures = report.cases.filter((c) => (c.status === "fail" && c.level === "MUST") || c.status === "warn").map((c) => ({ id: c.id, message: c.message ?? "" }));
  const caseDurations = new Map(report.cases.map((c) => [c.id, c.durationMs ?? 0]));
  return { failures, durationMs: report.durationMs ?? 0, evidence: "", caseDurations };
}

/** The run of the unmutated server that the mutant runs are judged against. */
interface Baseline {
  readonly failures: readonly { id: string; message?: string | undefined }[];
  readonly durationMs: number;
  readonly evidence: string;
  /** How long each case took there. */
  readonly caseDurations: ReadonlyMap<string, number>;
}

/**
 * The mutants, the longest expected first (by the baseline's time of the cases each names in
 * `caughtBy`; one without a hint may search much of the suite, so it counts as longest), so
 * that no slow mutant starts last while the other parallel runs have nothing left to do.
 */
export function longestFirst(mutants: readonly Mutant[], caseDurations: ReadonlyMap<string, number>): Mutant[] {
  const expected = (mutant: Mutant): number =>
    mutant.caughtBy === undefined ? Number.MAX_SAFE_INTEGER : Math.max(0, ...mutant.caughtBy.map((id) => caseDurations.get(id) ?? 0));
  return [...mutants].sort((a, b) => expected(b) - expected(a));
}

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    newest = Math.max(newest, (await stat(join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const { values } = parseArgs({
    args: argv[0] === "--" ? argv.slice(1) : argv,
    options: { fault: { type: "string", multiple: true }, parallel: { type: "string" }, baseline: { type: "string" } },
    strict: true,
  });
  const all = await loadMutants(REFERENCE_SERVER_MUTANTS);
  const byName = new Map(all.map((m) => [m.name, m]));
  for (const name of values.fault ?? []) if (!byName.has(name)) throw new Error(`unknown mutant ${name} (see ${relative(process.cwd(), REFERENCE_SERVER_MUTANTS)})`);
  const mutants = values.fault === undefined ? all : values.fault.map((name) => byName.get(name)!);
  const parallel = values.parallel === undefined ? Math.max(1, availableParallelism()) : Number.parseInt(values.parallel, 10);

  // Every mutant must still fit the sources before anything runs: one that does not is a
  // mutant to rewrite, and finding out after the whole run would waste it.
  const stale: string[] = [];
  for (const mutant of mutants) {
    await mutateSources(mutant, (file) => readFile(join(REFERENCE_SERVER_SRC, file), "utf8")).catch((error: unknown) => stale.push((error as Error).message));
  }
  if (stale.length > 0) {
    for (const message of stale) console.log(message);
    console.log(`caught 0 of ${mutants.length} mutants`);
    return 1;
  }

  const reused = values.baseline === undefined ? undefined : await reusableBaseline(values.baseline);
  let baseline: Baseline;
  if (reused !== undefined) {
    console.log(`baseline: the run of the unmutated reference server in ${relative(process.cwd(), values.baseline!)} (newer than every source it judged)`);
    baseline = reused;
  } else {
    console.log("baseline: the reference server without mutants");
    baseline = await runAgainst("(none)", (await baselineServer()).spawn, { concurrency: 8 });
  }
  if (baseline.evidence.startsWith("run error")) {
    console.log(`baseline could not run (${baseline.evidence})`);
    console.log(`caught 0 of ${mutants.length} mutants`);
    return 1;
  }
  const baselineFailures: KnownFailures = new Map(baseline.failures.map((f) => [f.id, "fails without any mutant"]));
  if (baselineFailures.size > 0) {
    console.log(`baseline: ${baselineFailures.size} case(s) fail (or warn) without any mutant; they cannot count as catching one:`);
    for (const failure of baseline.failures) console.log(`  ${failure.id}: ${(failure.message ?? "").split("\n")[0]}`);
  }
  console.log(`baseline done in ${(baseline.durationMs / 1000).toFixed(1)}s`);

  await mkdir(COPIES_DIR, { recursive: true });
  const runDir = await mkdtemp(join(COPIES_DIR, "run-"));
  // Ctrl-C exits from a signal handler; the copies must not outlive the run either way.
  const removeCopies = (): void => rmSync(runDir, { recursive: true, force: true });
  process.on("exit", removeCopies);
  // One copy per parallel run, each reused mutant after mutant (see copySources for why).
  const idle: SourceCopy[] = [];
  let copies = 0;
  const outcomes: MutantOutcome[] = [];
  try {
    await runPool(longestFirst(mutants, baseline.caseDurations), parallel, async (mutant) => {
      const copy = idle.pop() ?? (await copySources(REFERENCE_SERVER_SRC, join(runDir, `copy-${copies++}`)));
      const outcome = await runMutant(mutant, copy, 6, baselineFailures).finally(() => idle.push(copy));
      outcomes.push(outcome);
      console.log(`${outcome.caught ? "caught " : "MISSED "} ${mutant.name.padEnd(34)} ${(outcome.durationMs / 1000).toFixed(1)}s  ${outcome.evidence}`);
    });
  } finally {
    process.off("exit", removeCopies);
    removeCopies();
    // Another run may be using the folder; it removes it when it ends.
    await rmdir(COPIES_DIR).catch(() => {});
  }
  const caught = outcomes.filter((o) => o.caught).length;
  // Where the time went, for whoever has to keep CI within its budget: the slowest mutants on
  // stdout, every outcome in a report next to the suite's own.
  const slowest = [...outcomes].sort((a, b) => b.durationMs - a.durationMs).slice(0, 8);
  console.log(`slowest: ${slowest.map((o) => `${o.mutant} ${(o.durationMs / 1000).toFixed(0)}s`).join(", ")}`);
  // A mutant that none of its caughtBy cases caught ran more of the suite than it had to.
  for (const outcome of outcomes) {
    const named = byName.get(outcome.mutant)?.caughtBy ?? [];
    if (outcome.caught && !named.some((id) => outcome.failedCases.includes(id))) {
      console.log(`hint: ${outcome.mutant} is caught by ${outcome.failedCases.join(", ")}; ${named.length === 0 ? "it names no caughtBy" : `its caughtBy (${named.join(", ")}) did not catch it`}`);
    }
  }
  await mkdir(MUTANT_REPORT_DIR, { recursive: true });
  await writeFile(join(MUTANT_REPORT_DIR, "mutants.json"), `${JSON.stringify({ caught, total: mutants.length, parallel, outcomes }, null, 2)}\n`);
  console.log(`caught ${caught} of ${mutants.length} mutants`);
  return caught === mutants.length ? 0 : 1;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));
  process.on("unhandledRejection", (reason) => {
    console.error(`harness warning: unobserved rejection: ${reason instanceof Error ? reason.message : String(reason)}`);
  });
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`mutant run failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 2;
    },
  );
}
