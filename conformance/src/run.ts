import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ALL_CASES } from "./cases/index.js";
import { generatePlatformKeySet, loadFixturePlatformKeySet, writePlatformsFile } from "./fixtures/platform-keys.js";
import type { ConformanceCase, ProfileName } from "./harness/define-case.js";
import { startOidcProvider, type OidcProvider } from "./harness/oidc-provider.js";
import { formatHtmlReport } from "./reporters/html.js";
import { formatJsonReport } from "./reporters/json.js";
import { formatJunitReport } from "./reporters/junit.js";
import { runSucceeded } from "./reporters/summary.js";
import { loadKnownFailures, type KnownFailures } from "./runner/known-failures.js";
import { loadRequirements } from "./runner/requirements.js";
import { runSuite, type CaseResult, type SuiteReport } from "./runner/run-suite.js";
import { attachTarget, READY_TIMEOUT_MS, spawnTarget, type Target } from "./runner/target.js";
import { parseTargetSecurity } from "./harness/security.js";

/** Root of this repository (the suite lives in `<repo>/conformance`). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * The command that starts the reference server from `entry`, a `main.ts` given relative to
 * the server's package directory: its own `src/main.ts`, or a mutated copy of `src` made there
 * (see mutants.ts), which still resolves the package's dependencies.
 */
export function referenceServerCommand(entry: string): string {
  return `node --conditions=source --import tsx ${entry}`;
}

/** How the reference server is started when no target is given. */
export const REFERENCE_SERVER = {
  command: referenceServerCommand("src/main.ts"),
  cwd: join(REPO_ROOT, "packages", "reference-server"),
} as const;

/** The audience the suite sets for servers it spawns (runner contract). */
export const SPAWN_AUDIENCE = "continuity";

/** Everything the CLI can ask for. */
export interface RunOptions {
  /** Attach to host:port (`https://host:port` for TLS); exclusive with `spawn`. */
  readonly target?: string;
  /** Dial the target (attached or spawned) with TLS. */
  readonly tls?: boolean;
  /** PEM CA file to trust for TLS instead of the system's roots; implies `tls`. */
  readonly caFile?: string;
  /** Shell command to spawn; default: the reference server. */
  readonly spawn?: string;
  readonly spawnCwd?: string;
  readonly spawnEnv?: Readonly<Record<string, string>>;
  readonly profiles?: readonly ProfileName[];
  readonly knownFailuresFile?: string;
  /** Known failures given directly (mutant runs pass the baseline's failures). */
  readonly knownFailures?: KnownFailures;
  readonly filter?: RegExp;
  readonly concurrency?: number;
  /** Multiplies every case's time limit (`--timeout-scale`); see SuiteOptions.timeoutScale. */
  readonly timeoutScale?: number;
  readonly bail?: boolean;
  /** Run cases of this requirement area first (mutant runs reach the likely failure sooner). */
  readonly priorityArea?: string;
  /** Ids of cases to run before all others, even before `priorityArea`'s (a mutant's `caughtBy`). */
  readonly first?: readonly string[];
  readonly reportJson?: string;
  readonly reportJunit?: string;
  /** A self-contained HTML page per profile and requirement, with evidence and wire traces. */
  readonly reportHtml?: string;
  /** Base URL of the documentation site; reports then link each requirement to its page. */
  readonly docsUrl?: string;
  readonly onResult?: (result: CaseResult) => void;
  readonly onPlan?: (plan: { readonly total: number }) => void;
  readonly onCaseStart?: (id: string) => void;
}

/** Stable reorder: cases proving a requirement of `area` first, the rest in their usual order. */
function prioritize(cases: readonly ConformanceCase[], area: string): ConformanceCase[] {
  const first = (c: ConformanceCase) => c.requirements.some((id) => id.startsWith(`${area}-`));
  return [...cases.filter(first), ...cases.filter((c) => !first(c))];
}

/** A finished run. */
export interface RunOutcome {
  readonly report: SuiteReport;
  readonly succeeded: boolean;
}

/**
 * Runs the suite end to end: prepares keys and the target, runs every selected case,
 * writes the requested reports and always stops what it started.
 */
export async function runConformance(options: RunOptions): Promise<RunOutcome> {
  if (options.target !== undefined && options.spawn !== undefined) throw new Error("--target and --spawn are exclusive");
  const requirements = await loadRequirements();
  const knownFailures: KnownFailures = new Map([
    ...(options.knownFailuresFile === undefined ? [] : await loadKnownFailures(options.knownFailuresFile)),
    ...(options.knownFailures ?? []),
  ]);
  const { target: attachAddress, security } = await parseTargetSecurity(options.target, { tls: options.tls ?? false, caFile: options.caFile });
  let target: Target;
  let platforms;
  let scratch: string | undefined;
  let oidc: OidcProvider | undefined;
  if (attachAddress !== undefined) {
    platforms = await loadFixturePlatformKeySet();
    target = attachTarget(attachAddress, security);
  } else {
    platforms = await generatePlatformKeySet();
    scratch = await mkdtemp(join(tmpdir(), "continuity-conformance-"));
    const platformsFile = join(scratch, "platforms.json");
    try {
      oidc = await startOidcProvider();
      await writePlatformsFile(platforms, platformsFile, oidc.platformEntries());
      target = await spawnTarget({
        command: options.spawn ?? REFERENCE_SERVER.command,
        cwd: options.spawnCwd ?? (options.spawn === undefined ? REFERENCE_SERVER.cwd : process.cwd()),
        platformsFile,
        audience: SPAWN_AUDIENCE,
        ...(options.spawnEnv === undefined ? {} : { env: options.spawnEnv }),
        // A start is as slow as the machine: a CI runner starting six servers at once under tsx
        // (a second server of `--replicas 2` is three node processes) overran 30 s. The scale
        // reaches the second servers a case starts too (they inherit these options).
        readyTimeoutMs: Math.round(READY_TIMEOUT_MS * (options.timeoutScale ?? 1)),
        security,
      });
    } catch (error) {
      await oidc?.close();
      await rm(scratch, { recursive: true, force: true });
      throw error;
    }
  }
  try {
    const report = await runSuite({
      target,
      platforms,
      audience: options.target === undefined ? SPAWN_AUDIENCE : undefined,
      claimedProfiles: options.profiles,
      cases: options.priorityArea === undefined ? ALL_CASES : prioritize(ALL_CASES, options.priorityArea),
      filter: options.filter,
      concurrency: options.concurrency ?? 8,
      knownFailures,
      requirements,
      bail: options.bail ?? false,
      ...(options.timeoutScale === undefined ? {} : { timeoutScale: options.timeoutScale }),
      ...(options.first === undefined ? {} : { first: options.first }),
      ...(oidc === undefined ? {} : { oidc }),
      ...(options.onResult === undefined ? {} : { onResult: options.onResult }),
      ...(options.onPlan === undefined ? {} : { onPlan: options.onPlan }),
      ...(options.onCaseStart === undefined ? {} : { onCaseStart: options.onCaseStart }),
    });
    const links = options.docsUrl === undefined ? {} : { docsUrl: options.docsUrl };
    // A report's folder is made if it is missing, as a build's output folder would be.
    const write = async (file: string, text: string): Promise<void> => {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, text);
    };
    if (options.reportJson !== undefined) await write(options.reportJson, formatJsonReport(report, links));
    if (options.reportJunit !== undefined) await write(options.reportJunit, formatJunitReport(report, links));
    if (options.reportHtml !== undefined) await write(options.reportHtml, formatHtmlReport(report, { ...links, requirements }));
    return { report, succeeded: runSucceeded(report) };
  } finally {
    await target.stop();
    await oidc?.close();
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }
}
