/**
 * `pnpm conformance:mutation`: StrykerJS mutation testing of the reference server's protocol
 * code, with the conformance suite as the only test that may kill a mutant.
 *
 * Stryker instruments a copy of `packages/reference-server` (every mutant compiled in behind a
 * switch) and runs it through the `conformance` test runner (mutation/stryker-runner.ts), which
 * starts the instrumented server in its own process and runs, for each mutant, only the cases
 * that reached the mutated code. Reports: `packages/reference-server/reports/mutation/`
 * (`mutation.html`, `mutation.json`), then a score per folder on stdout.
 *
 *   --mutate <glob>     what to mutate, relative to packages/reference-server (repeatable;
 *                       default: the protocol code, see DEFAULT_MUTATE)
 *   --concurrency <n>   runner processes (default 2)
 *   --cases <n>         cases in parallel within one mutant run (default 8)
 *   --filter <regex>    only these conformance cases (a quick check; weakens the score)
 *   --incremental       reuse the results of the previous run for unchanged code
 *   --reuse <json>      with --incremental: also reuse the results in these reports (repeatable;
 *                       runs of parts of the code in parallel, then one run over all of it)
 *   --report-dir <dir>  where reports go (default packages/reference-server/reports/mutation)
 *   --store <store>     `sqlite` (default) or `postgres`: the servers run on the PostgreSQL
 *                       store in DATABASE_URL, each on a schema of its own (`mut_<run>_<random>`,
 *                       dropped when it stops, and whatever a killed runner left at the end);
 *                       the default --mutate is then src/store/postgres (not its migrations)
 *   --merge <json>      no run: merge these reports (repeatable) into one JSON and HTML report
 *                       (parts of one file measured on the same source are united)
 *                       in the report directory, and print its scores
 *   --survivors         also print every surviving mutant (file:line:column mutator → replacement)
 *   --dry-run-only      only the dry run (coverage); checks the set-up
 *   --ignore-static     leave out mutants of code that runs while a module loads
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import pg from "pg";
import { REPO_ROOT } from "./run.js";
import { LOGGING_IGNORER } from "./mutation/ignore-logging.js";

/** The server package; Stryker's sandbox is a copy of it, so its imports still resolve. */
export const SERVER_PACKAGE = join(REPO_ROOT, "packages", "reference-server");
export const REPORT_DIR = join(SERVER_PACKAGE, "reports", "mutation");

/** The protocol code: services, auth, events and the store's logic (not its schema DDL). */
export const DEFAULT_MUTATE: readonly string[] = [
  "src/services/**/*.ts",
  "src/auth/**/*.ts",
  "src/events/**/*.ts",
  "src/store/**/*.ts",
  "!src/**/*.test.ts",
  // Interfaces and two enum objects; the SQL schema is data, exercised by every case anyway.
  "!src/store/types.ts",
  "!src/store/portability-types.ts",
  "!src/store/sqlite/migrations.ts",
  // The suite's in-process server runs on SQLite, the default backend; the PostgreSQL store
  // runs the same store contract suite (src/testing/store-contract.ts) in its own tests.
  "!src/store/postgres/**",
  // Operator configuration, not protocol logic: it parses and validates the platforms file
  // and makes the development platforms. Every server the suite starts reads one valid file,
  // so its refusals of bad files are out of every case's reach (they are tested in
  // packages/reference-server/test/identity/platforms.test.ts); what the protocol takes from
  // it (the registry's lookups, a platform's default scopes) runs at every server start, where
  // a mutant breaks every case rather than hiding in a blind spot.
  "!src/auth/platforms.ts",
];

/**
 * With `--store postgres`: the PostgreSQL store's code, which DEFAULT_MUTATE leaves out (its
 * DDL left out as SQLite's is). The rest is measured on SQLite already.
 */
export const POSTGRES_MUTATE: readonly string[] = ["src/store/postgres/**/*.ts", "!src/**/*.test.ts", "!src/store/postgres/migrations.ts"];

/** Folders the score is reported for (`conformance/README.md` records them). */
export const SCORE_FOLDERS: readonly string[] = ["src/services/", "src/auth/", "src/events/", "src/store/"];
export const POSTGRES_SCORE_FOLDERS: readonly string[] = ["src/store/postgres/"];

export interface MutationRunOptions {
  readonly mutate?: readonly string[];
  readonly concurrency?: number;
  readonly caseConcurrency?: number;
  readonly filter?: string;
  readonly incremental?: boolean;
  readonly dryRunOnly?: boolean;
  readonly ignoreStatic?: boolean;
  readonly reportDir?: string;
  /** Reports whose results an incremental run may reuse besides its own last one. */
  readonly reuse?: readonly string[];
  readonly logLevel?: "off" | "error" | "warn" | "info" | "debug";
  readonly reporters?: readonly string[];
  /**
   * A postgres:// URL of a database: the servers run on the PostgreSQL store there instead of
   * SQLite. runMutationTesting gives the run a schema prefix of its own (runStoreUrl);
   * strykerOptions passes the URL as it is.
   */
  readonly store?: string;
}

/** The Stryker options of a run (the configuration `test/mutation.test.ts` validates). */
export function strykerOptions(options: MutationRunOptions = {}): Record<string, unknown> {
  const reportDir = options.reportDir ?? REPORT_DIR;
  return {
    testRunner: "conformance",
    plugins: ["stryker-runner.ts", "ignore-logging.ts"].map((file) => pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), "mutation", file)).href),
    ignorers: [LOGGING_IGNORER],
    // Unit tests next to the sources are never mutated, whatever --mutate names: no case runs them.
    mutate: options.mutate === undefined ? [...(options.store === undefined ? DEFAULT_MUTATE : POSTGRES_MUTATE)] : [...options.mutate, "!src/**/*.test.ts"],
    coverageAnalysis: "perTest",
    concurrency: options.concurrency ?? 2,
    ignoreStatic: options.ignoreStatic ?? false,
    // The runner process loads the TypeScript sources like `pnpm start` does.
    testRunnerNodeArgs: ["--conditions=source", "--import", "tsx"],
    checkerNodeArgs: ["--conditions=source", "--import", "tsx"],
    tempDirName: ".stryker-tmp",
    cleanTempDir: true,
    // Only the server's own sources matter in the sandbox.
    ignorePatterns: ["bench", "reports", ".mutants", "*.log"],
    // A case waits up to 20 s on its own; a mutant run is cases in parallel, so its net time
    // (the sum of its cases run one by one) overstates it: Stryker's timeout is generous.
    timeoutFactor: 0.6,
    timeoutMS: 45_000,
    dryRunTimeoutMinutes: 30,
    // Each mutant run builds a server; a fresh runner process every so often keeps a slow leak
    // (seen as a runner running out of memory after some hundred runs) from costing a restart.
    maxTestRunnerReuse: 60,
    dryRunOnly: options.dryRunOnly ?? false,
    incremental: options.incremental ?? false,
    incrementalFile: join(reportDir, "stryker-incremental.json"),
    reporters: [...(options.reporters ?? ["html", "json", "progress-append-only"])],
    htmlReporter: { fileName: join(reportDir, "mutation.html") },
    jsonReporter: { fileName: join(reportDir, "mutation.json") },
    thresholds: { high: 90, low: 85, break: null },
    logLevel: options.logLevel ?? "info",
    fileLogLevel: "off",
    conformance: {
      concurrency: options.caseConcurrency ?? 8,
      ...(options.filter === undefined ? {} : { filter: options.filter }),
      ...(options.store === undefined ? {} : { store: options.store }),
    },
  };
}

/** The store URL of one run's servers: schema `mut_<run>`, so each server's is `mut_<run>_<random>`. */
export function runStoreUrl(databaseUrl: string, run: string): string {
  const url = new URL(databaseUrl);
  if (!/^postgres(ql)?:$/.test(url.protocol)) throw new Error("the PostgreSQL store needs a postgres:// URL");
  url.searchParams.set("schema", `mut_${run}`);
  return url.toString();
}

/**
 * Drops every schema of a run (`mut_<run>_…`). Each server drops its own when it stops; this
 * takes what a runner process that Stryker killed (a timeout, a crash) could not.
 */
export async function dropRunSchemas(storeUrl: string): Promise<number> {
  const url = new URL(storeUrl);
  const prefix = `${url.searchParams.get("schema")}_`;
  url.searchParams.delete("schema");
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const rows = (await client.query<{ nspname: string }>("SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)", [prefix])).rows;
    for (const { nspname } of rows) await client.query(`DROP SCHEMA IF EXISTS ${nspname} CASCADE`);
    return rows.length;
  } finally {
    await client.end();
  }
}

/** Mutant counts and scores of one folder. */
export interface FolderScore {
  readonly folder: string;
  readonly killed: number;
  readonly timeout: number;
  readonly survived: number;
  readonly noCoverage: number;
  /** Marked equivalent (`Stryker disable`) or otherwise not run. */
  readonly ignored: number;
  readonly errors: number;
  /** Detected / (detected + survived + no coverage), in percent; undefined without mutants. */
  readonly score: number | undefined;
  /** Detected / (detected + survived): of the mutants some case reached. */
  readonly coveredScore: number | undefined;
}

interface ReportMutant {
  readonly status: string;
  readonly mutatorName?: string;
  readonly replacement?: string;
  readonly location?: { readonly start: { readonly line: number; readonly column: number } };
}

interface ReportFile {
  readonly mutants: readonly ReportMutant[];
}

/** One line per surviving (or uncovered) mutant, by file and line. */
export function formatSurvivors(report: { files: Record<string, ReportFile> }): string {
  const lines: string[] = [];
  for (const [file, content] of Object.entries(report.files).sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (file.endsWith(".test.ts")) continue;
    const survivors = content.mutants
      .filter((m) => m.status === "Survived" || m.status === "NoCoverage")
      .sort((a, b) => (a.location?.start.line ?? 0) - (b.location?.start.line ?? 0));
    for (const m of survivors) {
      const replacement = (m.replacement ?? "").replace(/\s+/g, " ").slice(0, 80);
      lines.push(`${file}:${m.location?.start.line ?? "?"}:${m.location?.start.column ?? "?"} ${m.mutatorName ?? "?"}${m.status === "NoCoverage" ? " (no coverage)" : ""} → ${replacement}`);
    }
  }
  return lines.join("\n");
}

/** Scores per folder from Stryker's JSON report (mutation-testing-report-schema). */
export function scoresByFolder(report: { files: Record<string, ReportFile> }, folders: readonly string[] = SCORE_FOLDERS): FolderScore[] {
  return folders.map((folder) => {
    const counts = { Killed: 0, Timeout: 0, Survived: 0, NoCoverage: 0, Ignored: 0, RuntimeError: 0, CompileError: 0, Pending: 0 } as Record<string, number>;
    for (const [file, content] of Object.entries(report.files)) {
      const path = relative(SERVER_PACKAGE, join(SERVER_PACKAGE, file)).split("\\").join("/");
      // A unit test mutated by an older run (before --mutate left them out) is no protocol code.
      if (!path.startsWith(folder) || path.endsWith(".test.ts")) continue;
      for (const mutant of content.mutants) counts[mutant.status] = (counts[mutant.status] ?? 0) + 1;
    }
    const detected = counts["Killed"]! + counts["Timeout"]!;
    const valid = detected + counts["Survived"]! + counts["NoCoverage"]!;
    return {
      folder,
      killed: counts["Killed"]!,
      timeout: counts["Timeout"]!,
      survived: counts["Survived"]!,
      noCoverage: counts["NoCoverage"]!,
      ignored: counts["Ignored"]!,
      errors: counts["RuntimeError"]! + counts["CompileError"]!,
      score: valid === 0 ? undefined : Math.round((detected / valid) * 1000) / 10,
      coveredScore: valid - counts["NoCoverage"]! === 0 ? undefined : Math.round((detected / (valid - counts["NoCoverage"]!)) * 1000) / 10,
    };
  });
}

function percent(value: number | undefined): string {
  return value === undefined ? "–" : `${value.toFixed(1)} %`;
}

/** A Markdown table of folder scores, as `conformance/README.md` records them. */
export function formatScores(scores: readonly FolderScore[]): string {
  const rows = scores.map(
    (s) => `| \`${s.folder}\` | ${percent(s.score)} | ${percent(s.coveredScore)} | ${s.killed} | ${s.timeout} | ${s.survived} | ${s.noCoverage} | ${s.ignored} | ${s.errors} |`,
  );
  return ["| Folder | Score | Of covered | Killed | Timeout | Survived | No coverage | Ignored (equivalent) | Errors |", "|---|---|---|---|---|---|---|---|---|", ...rows].join("\n");
}

interface FullReport {
  files: Record<string, ReportFile>;
  testFiles?: Record<string, { tests: { id: string }[] }>;
  [key: string]: unknown;
}

/**
 * Merges the results of other runs into the incremental file, so that Stryker reuses them:
 * parts of the code can be measured by runs in parallel and one run over everything then
 * only repeats the dry run and writes the whole report.
 */
async function mergeIntoIncrementalFile(incrementalFile: string, reports: readonly string[]): Promise<void> {
  const merged = await mergeReports([...(await exists(incrementalFile) ? [incrementalFile] : []), ...reports]);
  await mkdir(dirname(incrementalFile), { recursive: true });
  await writeFile(incrementalFile, JSON.stringify(merged));
}

async function exists(path: string): Promise<boolean> {
  try {
    await readFile(path);
    return true;
  } catch {
    return false;
  }
}

interface MergeMutant extends ReportMutant {
  readonly id?: string;
}

/** What identifies a mutant within one version of a file: its mutator, replacement and place. */
function mutantKey(m: MergeMutant): string {
  return `${m.mutatorName}|${m.replacement}|${m.location?.start.line}:${m.location?.start.column}`;
}

/**
 * One file's results from two reports. Runs of parts of one file (`--mutate 'file:10-80'`)
 * each hold only their part's mutants: when both measured the same source, the mutants are
 * united, a mutant both measured taking the later result (ids renumbered, since each run
 * numbers its own). Measured on different sources, the later report's file replaces the
 * earlier one's, as before, since places no longer match.
 */
export function mergeFile(earlier: ReportFile & { source?: string }, later: ReportFile & { source?: string }): ReportFile & { source?: string } {
  if (earlier.source === undefined || earlier.source !== later.source) return later;
  const byKey = new Map<string, MergeMutant>();
  for (const m of [...earlier.mutants, ...later.mutants] as MergeMutant[]) byKey.set(mutantKey(m), m);
  const ids = new Set<string>();
  const mutants = [...byKey.values()].map((m, index) => {
    const id = m.id === undefined || ids.has(m.id) ? `merged-${index}` : m.id;
    ids.add(id);
    return { ...m, id };
  });
  return { ...later, mutants };
}

/** The union of several reports: disjoint files, or parts of one file (see mergeFile); later wins. */
export async function mergeReports(paths: readonly string[]): Promise<FullReport> {
  let merged: FullReport | undefined;
  for (const path of paths) {
    const report = JSON.parse(await readFile(path, "utf8")) as FullReport;
    if (merged === undefined) merged = { ...report, files: { ...report.files }, testFiles: { ...report.testFiles } };
    else {
      for (const [file, content] of Object.entries(report.files)) {
        const known = merged.files[file];
        merged.files[file] = known === undefined ? content : mergeFile(known, content);
      }
      for (const [file, content] of Object.entries(report.testFiles ?? {})) {
        const known = merged.testFiles![file];
        const ids = new Set(known?.tests.map((t) => t.id) ?? []);
        merged.testFiles![file] = known === undefined ? content : { ...known, tests: [...known.tests, ...content.tests.filter((t) => !ids.has(t.id))] };
      }
    }
  }
  if (merged === undefined) throw new Error("nothing to merge");
  return merged;
}

/**
 * Marks as ignored what today's sources say is equivalent (a `Stryker disable` comment, or
 * the logging ignorer) in results measured before the mark was made, exactly as Stryker's
 * instrumenter decides it: each file is instrumented again and a measured mutant is matched
 * by mutator, replacement, column and the text of its line, which a comment added above it
 * does not change.
 */
async function applyCurrentIgnores(report: FullReport): Promise<void> {
  const { Instrumenter } = await import("@stryker-mutator/instrumenter");
  const { loggingIgnorer } = await import("./mutation/ignore-logging.js");
  const silent = { isDebugEnabled: () => false, isTraceEnabled: () => false, debug() {}, trace() {}, info() {}, warn() {}, error() {} };
  for (const [file, content] of Object.entries(report.files) as [string, ReportFile & { source?: string }][]) {
    let source: string;
    try {
      source = await readFile(join(SERVER_PACKAGE, file), "utf8");
    } catch {
      continue;
    }
    const instrumented = await new Instrumenter(silent as never).instrument([{ name: join(SERVER_PACKAGE, file), content: source, mutate: true }], {
      plugins: null,
      excludedMutations: [],
      ignorers: [loggingIgnorer],
    });
    const lines = source.split("\n");
    const oldLines = (content.source ?? "").split("\n");
    const reasons = new Map<string, string[]>();
    const key = (line: string | undefined, m: ReportMutant) => `${m.mutatorName}|${m.replacement}|${m.location?.start.column}|${(line ?? "").trim()}`;
    for (const m of instrumented.mutants) {
      if (m.status !== "Ignored") continue;
      // Instrumenter positions are 0-based lines; report positions are 1-based.
      const k = key(lines[m.location.start.line], { ...m, location: { start: { line: m.location.start.line + 1, column: m.location.start.column + 1 } } } as ReportMutant);
      reasons.set(k, [...(reasons.get(k) ?? []), m.statusReason ?? "ignored"]);
    }
    for (const m of content.mutants as (ReportMutant & { statusReason?: string })[]) {
      if (m.status === "Ignored" || m.location === undefined) continue;
      const queue = reasons.get(key(oldLines[m.location.start.line - 1], m));
      const reason = queue?.shift();
      if (reason !== undefined) {
        (m as { status: string }).status = "Ignored";
        m.statusReason = reason;
      }
    }
  }
}

/**
 * Writes a merged report as Stryker's HTML reporter does: its report viewer
 * (mutation-testing-elements, which Stryker ships) with the JSON inlined.
 */
export async function writeMergedReport(paths: readonly string[], reportDir: string = REPORT_DIR): Promise<FolderScore[]> {
  const report = await mergeReports(paths);
  await applyCurrentIgnores(report);
  const fromStryker = createRequire(createRequire(import.meta.url).resolve("@stryker-mutator/core"));
  const viewer = await readFile(fromStryker.resolve("mutation-testing-elements/dist/mutation-test-elements.js"), "utf8");
  const json = JSON.stringify(report).replace(/</g, "\\u003c");
  await mkdir(reportDir, { recursive: true });
  await writeFile(join(reportDir, "mutation.json"), JSON.stringify(report));
  await writeFile(
    join(reportDir, "mutation.html"),
    `<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n<script>\n${viewer}\n</script>\n</head>\n<body>\n<mutation-test-report-app titlePostfix="Stryker"></mutation-test-report-app>\n<script>\ndocument.querySelector("mutation-test-report-app").report = ${json};\n</script>\n</body>\n</html>\n`,
  );
  return scoresByFolder(report);
}

/** Runs Stryker with these options; resolves to the scores (none after a dry run only). */
export async function runMutationTesting(options: MutationRunOptions = {}): Promise<FolderScore[]> {
  const { Stryker } = await import("@stryker-mutator/core");
  const reportDir = options.reportDir ?? REPORT_DIR;
  if (options.reuse !== undefined && options.reuse.length > 0) {
    if (!options.incremental) throw new Error("--reuse needs --incremental");
    await mergeIntoIncrementalFile(join(reportDir, "stryker-incremental.json"), options.reuse);
  }
  const store = options.store === undefined ? undefined : runStoreUrl(options.store, randomBytes(4).toString("hex"));
  const previous = process.cwd();
  // Stryker's project is the directory it starts in: the server package, so the sandbox is a
  // copy of that package and resolves its dependencies through the package's node_modules.
  process.chdir(SERVER_PACKAGE);
  try {
    await new Stryker(strykerOptions({ ...options, ...(store === undefined ? {} : { store }) })).runMutationTest();
  } finally {
    process.chdir(previous);
    if (store !== undefined) await dropRunSchemas(store);
  }
  if (options.dryRunOnly) return [];
  const report = JSON.parse(await readFile(join(reportDir, "mutation.json"), "utf8")) as { files: Record<string, ReportFile> };
  return scoresByFolder(report, store === undefined ? SCORE_FOLDERS : POSTGRES_SCORE_FOLDERS);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const { values } = parseArgs({
    args: argv[0] === "--" ? argv.slice(1) : argv,
    options: {
      mutate: { type: "string", multiple: true },
      concurrency: { type: "string" },
      cases: { type: "string" },
      filter: { type: "string" },
      incremental: { type: "boolean", default: false },
      reuse: { type: "string", multiple: true },
      "report-dir": { type: "string" },
      merge: { type: "string", multiple: true },
      survivors: { type: "boolean", default: false },
      "dry-run-only": { type: "boolean", default: false },
      "ignore-static": { type: "boolean", default: false },
      store: { type: "string", default: "sqlite" },
    },
    strict: true,
  });
  const positive = (text: string | undefined, flag: string): number | undefined => {
    if (text === undefined) return undefined;
    const value = Number.parseInt(text, 10);
    if (!(value >= 1)) throw new Error(`--${flag} must be a positive integer`);
    return value;
  };
  const invokedFrom = process.env["INIT_CWD"] ?? process.cwd();
  const concurrency = positive(values.concurrency, "concurrency");
  const caseConcurrency = positive(values.cases, "cases");
  if (values.store !== "sqlite" && values.store !== "postgres") throw new Error("--store must be sqlite or postgres");
  // Asked for, never inferred: DATABASE_URL is set on machines that run the store's tests.
  const databaseUrl = process.env["DATABASE_URL"];
  if (values.store === "postgres" && (databaseUrl === undefined || databaseUrl === "")) throw new Error("--store postgres needs DATABASE_URL (postgres://user@host:port/database)");
  const reportDir = values["report-dir"] === undefined ? REPORT_DIR : resolve(invokedFrom, values["report-dir"]);
  const scores = values.merge !== undefined ? await writeMergedReport(values.merge.map((path) => resolve(invokedFrom, path)), reportDir) : await runMutationTesting({
    ...(values.mutate === undefined ? {} : { mutate: values.mutate }),
    ...(concurrency === undefined ? {} : { concurrency }),
    ...(caseConcurrency === undefined ? {} : { caseConcurrency }),
    ...(values.filter === undefined ? {} : { filter: values.filter }),
    incremental: values.incremental,
    ...(values.reuse === undefined ? {} : { reuse: values.reuse.map((path) => resolve(invokedFrom, path)) }),
    reportDir,
    dryRunOnly: values["dry-run-only"],
    ignoreStatic: values["ignore-static"],
    ...(values.store === "postgres" ? { store: databaseUrl! } : {}),
  });
  if (scores.length > 0) {
    console.log(`\nmutation score per folder (report: ${join(reportDir, "mutation.html")})\n`);
    console.log(formatScores(scores));
    if (values.survivors) {
      const report = JSON.parse(await readFile(join(reportDir, "mutation.json"), "utf8")) as { files: Record<string, ReportFile> };
      console.log(`\nsurviving mutants\n\n${formatSurvivors(report)}`);
    }
  }
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`mutation run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      process.exitCode = 2;
    },
  );
}
