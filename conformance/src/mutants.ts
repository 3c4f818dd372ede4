// Proves the suite's strength: runs it against the reference server once per deliberate fault
// (packages/reference-server/src/testing/faults.ts) and requires every fault to be caught by
// at least one failing MUST case. A suite that lets a broken server pass is worse than none.
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import type { KnownFailures } from "./runner/known-failures.js";
import { runPool, type CaseResult, type SuiteReport } from "./runner/run-suite.js";
import { REFERENCE_SERVER, REPO_ROOT, runConformance } from "./run.js";

/** How one mutant run ended. */
export interface MutantOutcome {
  readonly fault: string;
  readonly area: string;
  readonly caught: boolean;
  /** The MUST cases that failed (the first few), or why the run could not judge. */
  readonly evidence: string;
  readonly durationMs: number;
}

/** The fault list, read from the reference server's own registry so the two never drift. */
export async function loadFaults(): Promise<Record<string, { area: string; description: string }>> {
  const module = (await import(pathToFileURL(join(REPO_ROOT, "packages", "reference-server", "src", "testing", "faults.ts")).href)) as {
    FAULTS: Record<string, { area: string; description: string }>;
  };
  return module.FAULTS;
}

function mustFailures(report: SuiteReport): CaseResult[] {
  return report.results.filter((result) => result.status === "fail" && result.level === "MUST");
}

/**
 * Runs the suite once against the server started with `fault` (undefined = no fault). Cases
 * that already fail without any fault are passed as known failures: they cannot prove that a
 * mutant was caught, and they must not stop a bailing run before the cases that can.
 */
export async function runMutant(fault: string | undefined, area: string, concurrency: number, baselineFailures: KnownFailures = new Map()): Promise<MutantOutcome & { failures: CaseResult[] }> {
  const started = Date.now();
  try {
    const { report } = await runConformance({
      spawn: fault === undefined ? REFERENCE_SERVER.command : `${REFERENCE_SERVER.command} --unsafe-test-fault ${fault}`,
      spawnCwd: REFERENCE_SERVER.cwd,
      spawnEnv: { CONTINUITY_ALLOW_TEST_FAULTS: "1" },
      concurrency,
      bail: fault !== undefined,
      knownFailures: baselineFailures,
      ...(fault === undefined ? {} : { priorityArea: area }),
    });
    const failures = mustFailures(report);
    const evidence = failures.length > 0 ? failures.slice(0, 3).map((f) => `${f.id}: ${(f.message ?? "").split("\n")[0]}`).join(" | ") : report.errors.join("; ") || "no MUST case failed";
    return { fault: fault ?? "(none)", area, caught: failures.length > 0, evidence, durationMs: Date.now() - started, failures };
  } catch (error) {
    return { fault: fault ?? "(none)", area, caught: false, evidence: `run error: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`, durationMs: Date.now() - started, failures: [] };
  }
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const { values } = parseArgs({ args: argv[0] === "--" ? argv.slice(1) : argv, options: { fault: { type: "string", multiple: true }, parallel: { type: "string" } }, strict: true });
  const faults = await loadFaults();
  const names = values.fault ?? Object.keys(faults);
  for (const name of names) if (faults[name] === undefined) throw new Error(`unknown fault ${name}`);
  const parallel = values.parallel === undefined ? Math.max(1, availableParallelism()) : Number.parseInt(values.parallel, 10);

  console.log("baseline: the reference server without faults");
  const baseline = await runMutant(undefined, "", 8);
  if (baseline.evidence.startsWith("run error")) {
    console.log(`baseline could not run (${baseline.evidence})`);
    console.log(`caught 0 of ${names.length} mutants`);
    return 1;
  }
  const baselineFailures: KnownFailures = new Map(baseline.failures.map((f) => [f.id, "fails without any fault"]));
  if (baselineFailures.size > 0) {
    console.log(`baseline: ${baselineFailures.size} MUST case(s) fail without any fault; they cannot count as catching a mutant:`);
    for (const failure of baseline.failures) console.log(`  ${failure.id}: ${(failure.message ?? "").split("\n")[0]}`);
  }
  console.log(`baseline done in ${(baseline.durationMs / 1000).toFixed(1)}s`);

  const outcomes: MutantOutcome[] = [];
  await runPool(names, parallel, async (name) => {
    const outcome = await runMutant(name, faults[name]!.area, 6, baselineFailures);
    outcomes.push(outcome);
    console.log(`${outcome.caught ? "caught " : "MISSED "} ${name.padEnd(34)} ${(outcome.durationMs / 1000).toFixed(1)}s  ${outcome.evidence}`);
  });
  const caught = outcomes.filter((o) => o.caught).length;
  console.log(`caught ${caught} of ${names.length} mutants`);
  return caught === names.length ? 0 : 1;
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
