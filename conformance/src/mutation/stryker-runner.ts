/**
 * A StrykerJS test runner whose only tests are the conformance cases, run over the wire
 * against the instrumented reference server in this process (in-process-target.ts).
 *
 * Why a runner of our own: Stryker's command runner restarts the whole suite (and the server)
 * for every mutant and cannot measure coverage, and its vitest runner would wrap each case in a
 * test file of its own. This one uses Stryker's mutant switching as designed:
 *
 * - The server's modules are imported once per runner process. A mutant is activated by setting
 *   `__stryker__.activeMutant`; a fresh server instance (a new store in a new directory) is then
 *   built from the loaded modules, so everything that runs when a server starts (service
 *   factories, the store's schema and statements) sees the mutant too. Only code that runs
 *   while a module loads (top-level constants) is "static"; for those Stryker starts a new
 *   runner process, and the mutant is activated before the modules are imported.
 * - Coverage per case: the dry run runs the cases one at a time, each against its own server
 *   built while `__stryker__.currentTestId` names the case, so every line a case reaches (its
 *   requests, the server's start, its timers) is counted for that case and no other. A mutant
 *   is then run against only the cases that reached it, in parallel, and stops at the first
 *   failure unless `disableBail` is set.
 *
 * A mutant counts as killed when a case fails (MUST), warns (SHOULD/MAY deviation) or ends in a
 * harness error (the server answered something the case could not even read), when a server
 * with the mutant cannot start, or when the mutated server throws outside any call (in a
 * spawned server that is a crash). Cases that cannot run in this mode or that fail against the
 * unmutated server are reported skipped and never kill anything.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve, sep } from "node:path";
import { commonTokens, declareClassPlugin, PluginKind, tokens } from "@stryker-mutator/api/plugin";
import type { Logger } from "@stryker-mutator/api/logging";
import type { MutantCoverage, StrykerOptions } from "@stryker-mutator/api/core";
import {
  DryRunStatus,
  MutantRunStatus,
  TestStatus,
  type DryRunOptions,
  type DryRunResult,
  type MutantRunOptions,
  type MutantRunResult,
  type TestResult,
  type TestRunner,
  type TestRunnerCapabilities,
} from "@stryker-mutator/api/test-runner";
import { ALL_CASES } from "../cases/index.js";
import { generatePlatformKeySet, writePlatformsFile, type PlatformKeySet } from "../fixtures/platform-keys.js";
import { startOidcProvider, type OidcProvider } from "../harness/oidc-provider.js";
import type { ConformanceCase, ProfileName } from "../harness/define-case.js";
import { loadRequirements, type RequirementSet } from "../runner/requirements.js";
import { runSuite, type CaseResult } from "../runner/run-suite.js";
import type { Target } from "../runner/target.js";
import { SPAWN_AUDIENCE } from "../run.js";
import { loadServerModules, startInProcessTarget, type ServerModules } from "./in-process-target.js";

/** The runner's settings, under `conformance` in the Stryker options. */
export interface ConformanceRunnerSettings {
  /** Only cases whose id matches this regular expression (e.g. for a quick check). */
  readonly filter?: string;
  /** Cases in parallel during a mutant run (the dry run is always sequential). Default 8. */
  readonly concurrency?: number;
  /** Extra server settings, as the environment variables a spawned server would get. */
  readonly env?: Readonly<Record<string, string>>;
  /** The reference server's `src`, relative to the sandbox (the working directory); default `src`. */
  readonly srcDir?: string;
  /**
   * A postgres:// URL: every server runs on the PostgreSQL store, on a schema of its own named
   * after the URL's `schema` (in-process-target.ts). Default: SQLite.
   */
  readonly store?: string;
}

/** Stryker validates plugin options against this. */
export const strykerValidationSchema = {
  $schema: "http://json-schema.org/draft-07/schema",
  type: "object",
  properties: {
    conformance: {
      type: "object",
      additionalProperties: false,
      properties: {
        filter: { type: "string" },
        concurrency: { type: "integer", minimum: 1 },
        env: { type: "object", additionalProperties: { type: "string" } },
        srcDir: { type: "string" },
        store: { type: "string" },
      },
    },
  },
};

interface StrykerNamespace {
  activeMutant?: string | undefined;
  currentTestId?: string | undefined;
  mutantCoverage?: MutantCoverage;
  hitCount?: number;
  hitLimit?: number;
}

function namespace(): StrykerNamespace {
  const global = globalThis as { __stryker__?: StrykerNamespace };
  return (global.__stryker__ ??= {});
}

/**
 * Every profile is claimed, whatever the server declares: a mutant that drops a profile from
 * ServerInfo must not turn its cases into skips (the run then fails with a profile mismatch).
 */
const CLAIMED: readonly ProfileName[] = ["core", "identity", "portability"];

/** Written next to `src` by the dry run, read by mutant runs in other processes of the same sandbox. */
const DURATIONS_FILE = ".conformance-case-durations.json";

export class ConformanceTestRunner implements TestRunner {
  static inject = tokens(commonTokens.logger, commonTokens.options);

  private readonly settings: ConformanceRunnerSettings;
  private modules: ServerModules | undefined;
  private platforms: PlatformKeySet | undefined;
  private scratch: string | undefined;
  private platformsFile: string | undefined;
  /** The OpenID providers the in-process servers trust, as in a spawn-mode run (TOKEN-020 and on). */
  private oidc: OidcProvider | undefined;
  private readonly srcDir: string;
  private requirements: RequirementSet | undefined;
  private durations = new Map<string, number>();
  /** Errors the mutated server threw outside any call during the current run. */
  private strayErrors: string[] = [];
  private readonly onStray = (error: unknown): void => {
    const text = error instanceof Error ? `${error.name}: ${error.message}\n${error.stack ?? ""}` : String(error);
    const srcDir = this.modules?.srcDir;
    // Only the server's own throws count; a harness slip is not the mutant's doing.
    if (srcDir !== undefined && text.includes(`${srcDir}${sep}`)) this.strayErrors.push(text);
    else this.logger.warn(`unobserved error outside the server: ${text}`);
  };

  constructor(
    private readonly logger: Logger,
    options: StrykerOptions,
  ) {
    this.settings = (options as { conformance?: ConformanceRunnerSettings }).conformance ?? {};
    this.srcDir = resolve(process.cwd(), this.settings.srcDir ?? "src");
  }

  capabilities(): TestRunnerCapabilities {
    // Modules loaded with `import` cannot be loaded again: Stryker restarts the process.
    return { reloadEnvironment: false };
  }

  async init(): Promise<void> {
    process.on("uncaughtException", this.onStray);
    process.on("unhandledRejection", this.onStray);
    this.requirements = await loadRequirements();
    this.platforms = await generatePlatformKeySet();
    this.scratch = await mkdtemp(join(tmpdir(), "continuity-mutation-"));
    this.platformsFile = join(this.scratch, "platforms.json");
    this.oidc = await startOidcProvider();
    await writePlatformsFile(this.platforms, this.platformsFile, this.oidc.platformEntries());
  }

  async dispose(): Promise<void> {
    process.off("uncaughtException", this.onStray);
    process.off("unhandledRejection", this.onStray);
    await this.oidc?.close();
    if (this.scratch !== undefined) await rm(this.scratch, { recursive: true, force: true });
  }

  async dryRun(options: DryRunOptions): Promise<DryRunResult> {
    const ns = namespace();
    try {
      await this.load();
    } catch (error) {
      return { status: DryRunStatus.Error, errorMessage: `cannot load the reference server: ${describe(error)}` };
    }
    const collectCoverage = options.coverageAnalysis !== "off";
    const staticCoverage = { ...ns.mutantCoverage?.static };
    const tests: TestResult[] = [];
    const perTest: Record<string, Record<string, number>> = {};
    for (const conformanceCase of this.selectedCases()) {
      let result = await this.runAlone(conformanceCase);
      // One more try before a case is set aside: the machine may just have been busy.
      if (kills(result)) result = await this.runAlone(conformanceCase);
      const hits = ns.mutantCoverage?.perTest[conformanceCase.id] ?? {};
      if (ns.mutantCoverage !== undefined) delete ns.mutantCoverage.perTest[conformanceCase.id];
      const base = { id: conformanceCase.id, name: conformanceCase.id, timeSpentMs: result.durationMs };
      if (result.status === "pass") {
        tests.push({ ...base, status: TestStatus.Success });
        if (collectCoverage) perTest[conformanceCase.id] = hits;
        this.durations.set(conformanceCase.id, result.durationMs);
      } else {
        // A case that does not pass against the unmutated server proves nothing about a mutant.
        if (result.status !== "skip") this.logger.warn(`case ${conformanceCase.id} is ${result.status} without any mutant; it is left out: ${result.message ?? ""}`);
        tests.push({ ...base, status: TestStatus.Skipped });
      }
    }
    await writeFile(join(dirname(this.srcDir), DURATIONS_FILE), JSON.stringify(Object.fromEntries(this.durations)));
    return {
      status: DryRunStatus.Complete,
      tests,
      ...(collectCoverage ? { mutantCoverage: { static: staticCoverage, perTest } } : {}),
    };
  }

  async mutantRun(options: MutantRunOptions): Promise<MutantRunResult> {
    const ns = namespace();
    ns.activeMutant = options.activeMutant.id;
    ns.currentTestId = undefined;
    if (options.hitLimit === undefined) {
      delete ns.hitCount;
      delete ns.hitLimit;
    } else {
      ns.hitCount = 0;
      ns.hitLimit = options.hitLimit;
    }
    this.strayErrors = [];
    try {
      await this.load();
      if (this.durations.size === 0) this.durations = await readDurations(join(dirname(this.srcDir), DURATIONS_FILE));
      const wanted = options.testFilter === undefined ? undefined : new Set(options.testFilter);
      const cases = this.selectedCases()
        .filter((c) => wanted === undefined || wanted.has(c.id))
        // Longest first, the rest filling the other slots: a surviving mutant (which runs every
        // case it reached) then takes about as long as its slowest case, and with bail a
        // killed one still stops at the first of the many quick cases that fails.
        .sort((a, b) => (this.durations.get(b.id) ?? 0) - (this.durations.get(a.id) ?? 0));
      let target: Target;
      try {
        target = await this.startTarget();
      } catch (error) {
        return { status: MutantRunStatus.Killed, killedBy: cases.slice(0, 1).map((c) => c.id), failureMessage: `the server did not start: ${describe(error)}`, nrOfTests: 1 };
      }
      let results: readonly CaseResult[];
      let runErrors: readonly string[];
      try {
        const report = await runSuite({
          target,
          platforms: this.platforms!,
          audience: SPAWN_AUDIENCE,
          claimedProfiles: CLAIMED,
          cases,
          filter: undefined,
          concurrency: this.settings.concurrency ?? 8,
          knownFailures: new Map(),
          requirements: this.requirements!,
          bail: !options.disableBail,
          ...(this.oidc === undefined ? {} : { oidc: this.oidc }),
        });
        results = report.results;
        runErrors = report.errors;
      } catch (error) {
        return { status: MutantRunStatus.Killed, killedBy: cases.slice(0, 1).map((c) => c.id), failureMessage: `the run could not start: ${describe(error)}`, nrOfTests: 1 };
      } finally {
        await target.stop();
      }
      if (ns.hitLimit !== undefined && (ns.hitCount ?? 0) > ns.hitLimit) {
        return { status: MutantRunStatus.Timeout, reason: `hit limit ${ns.hitLimit} reached (${ns.hitCount} hits)` };
      }
      const ran = results.filter((r) => r.status !== "skip");
      const killers = results.filter(kills);
      if (killers.length > 0) {
        return {
          status: MutantRunStatus.Killed,
          killedBy: killers.map((r) => r.id),
          failureMessage: `${killers[0]!.status} ${killers[0]!.id}: ${killers[0]!.message ?? ""}`,
          nrOfTests: ran.length,
        };
      }
      if (runErrors.length > 0) {
        return { status: MutantRunStatus.Killed, killedBy: ran.slice(0, 1).map((r) => r.id), failureMessage: `the run failed: ${runErrors.join("; ")}`, nrOfTests: ran.length };
      }
      if (this.strayErrors.length > 0) {
        return { status: MutantRunStatus.Killed, killedBy: ran.slice(0, 1).map((r) => r.id), failureMessage: `the server threw outside a call: ${this.strayErrors[0]}`, nrOfTests: ran.length };
      }
      return { status: MutantRunStatus.Survived, nrOfTests: ran.length };
    } finally {
      ns.activeMutant = undefined;
      delete ns.hitCount;
      delete ns.hitLimit;
    }
  }

  private async load(): Promise<void> {
    this.modules ??= await loadServerModules(this.srcDir);
  }

  private selectedCases(): ConformanceCase[] {
    const filter = this.settings.filter === undefined ? undefined : new RegExp(this.settings.filter);
    return ALL_CASES.filter((c) => filter === undefined || filter.test(c.id));
  }

  private startTarget(): Promise<Target> {
    return startInProcessTarget({
      modules: this.modules!,
      platformsFile: this.platformsFile!,
      audience: SPAWN_AUDIENCE,
      ...(this.settings.env === undefined ? {} : { env: this.settings.env }),
      ...(this.settings.store === undefined ? {} : { store: this.settings.store }),
    });
  }

  /** One case against a server of its own, with every line it reaches counted for it. */
  private async runAlone(conformanceCase: ConformanceCase): Promise<CaseResult> {
    const ns = namespace();
    ns.currentTestId = conformanceCase.id;
    try {
      const target = await this.startTarget();
      try {
        const report = await runSuite({
          target,
          platforms: this.platforms!,
          audience: SPAWN_AUDIENCE,
          claimedProfiles: CLAIMED,
          cases: [conformanceCase],
          filter: undefined,
          concurrency: 1,
          knownFailures: new Map(),
          requirements: this.requirements!,
          bail: false,
          ...(this.oidc === undefined ? {} : { oidc: this.oidc }),
        });
        return report.results[0]!;
      } finally {
        await target.stop();
      }
    } finally {
      ns.currentTestId = undefined;
    }
  }
}

async function readDurations(path: string): Promise<Map<string, number>> {
  try {
    return new Map(Object.entries(JSON.parse(await readFile(path, "utf8")) as Record<string, number>));
  } catch {
    return new Map();
  }
}

function kills(result: CaseResult): boolean {
  return result.status === "fail" || result.status === "warn" || result.status === "error";
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export const strykerPlugins = [declareClassPlugin(PluginKind.TestRunner, "conformance", ConformanceTestRunner)];
