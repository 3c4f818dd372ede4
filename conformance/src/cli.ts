import { parseArgs } from "node:util";
import { resolve } from "node:path";
import type { ProfileName } from "./harness/define-case.js";
import { formatCaseLine, formatConsoleSummary } from "./reporters/console.js";
import { createProgressReporter } from "./reporters/progress.js";
import { runConformance } from "./run.js";

const USAGE = `continuity-conformance — checks a Continuity server over the wire

  (no target)              spawn the reference server of this repository
  --spawn '<command>'      spawn your server (env CONTINUITY_LISTEN/DATA_DIR/PLATFORMS/AUDIENCE,
                           ready line CONTINUITY_LISTENING=host:port on stdout)
  --target host:port       attach to a running server that trusts fixtures/platforms.json
                           (https://host:port: over TLS)
  --tls                    dial the target (or the spawned server) with TLS
  --ca <file>              trust this PEM CA for TLS instead of the system's roots (implies --tls)
  --profile core,identity  profiles you claim (default: ServerInfo.profiles)
  --known-failures <file>  JSON [{"case": "<id>", "reason": "<why>"}]
  --report-json <file>     machine-readable report
  --report-junit <file>    JUnit XML for CI
  --report-html <file>     one HTML page: per profile and requirement, evidence, wire traces
  --docs-url <url>         docs site base URL; failures link to <url>/requirements/#<ID>
  --trace                  print the wire exchange of failing cases
  --filter <regex>         only cases whose id matches
  --concurrency <n>        cases in parallel (default 8)
  --timeout-scale <x>      multiply every case's time limit (default 1), for a machine
                           shared with other work; checks inside a case are not scaled
  --bail                   stop at the first MUST failure
  --quiet                  print only problems and the summary
  --no-progress            no progress line on stderr`;

const PROFILES: readonly ProfileName[] = ["core", "identity", "portability"];

async function main(): Promise<number> {
  // `pnpm conformance -- --target x` hands the script a literal "--" first; accept both forms.
  const argv = process.argv.slice(2);
  const { values } = parseArgs({
    args: argv[0] === "--" ? argv.slice(1) : argv,
    options: {
      target: { type: "string" },
      tls: { type: "boolean", default: false },
      ca: { type: "string" },
      spawn: { type: "string" },
      profile: { type: "string" },
      "known-failures": { type: "string" },
      "report-json": { type: "string" },
      "report-junit": { type: "string" },
      "report-html": { type: "string" },
      "docs-url": { type: "string" },
      trace: { type: "boolean", default: false },
      filter: { type: "string" },
      concurrency: { type: "string" },
      "timeout-scale": { type: "string" },
      bail: { type: "boolean", default: false },
      quiet: { type: "boolean", default: false },
      "no-progress": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const profiles = values.profile?.split(",").map((name) => name.trim()).filter((name) => name !== "");
  for (const profile of profiles ?? []) {
    if (!PROFILES.includes(profile as ProfileName)) throw new Error(`unknown profile "${profile}" (known: ${PROFILES.join(", ")})`);
  }
  const concurrency = values.concurrency === undefined ? undefined : Number.parseInt(values.concurrency, 10);
  if (concurrency !== undefined && !(concurrency >= 1)) throw new Error("--concurrency must be a positive integer");
  const timeoutScale = values["timeout-scale"] === undefined ? undefined : Number(values["timeout-scale"]);
  if (timeoutScale !== undefined && !(Number.isFinite(timeoutScale) && timeoutScale >= 1 && timeoutScale <= 100)) throw new Error("--timeout-scale must be a number from 1 to 100");
  // Run through a package manager, the process starts in the package's folder; relative
  // paths and the spawned command must mean what they meant where the user typed them.
  const invokedFrom = process.env["INIT_CWD"] ?? process.cwd();
  const fromInvocation = (path: string) => resolve(invokedFrom, path);
  const progress = values["no-progress"] ? undefined : createProgressReporter(process.stderr);
  const print = (text: string): void => (progress === undefined ? console.log(text) : progress.around(() => console.log(text)));
  const { report, succeeded } = await runConformance({
    ...(values.target === undefined ? {} : { target: values.target }),
    tls: values.tls,
    ...(values.ca === undefined ? {} : { caFile: fromInvocation(values.ca) }),
    ...(values.spawn === undefined ? {} : { spawn: values.spawn, spawnCwd: invokedFrom }),
    ...(profiles === undefined ? {} : { profiles: profiles as ProfileName[] }),
    ...(values["known-failures"] === undefined ? {} : { knownFailuresFile: fromInvocation(values["known-failures"]) }),
    ...(values["report-json"] === undefined ? {} : { reportJson: fromInvocation(values["report-json"]) }),
    ...(values["report-junit"] === undefined ? {} : { reportJunit: fromInvocation(values["report-junit"]) }),
    ...(values["report-html"] === undefined ? {} : { reportHtml: fromInvocation(values["report-html"]) }),
    ...(values["docs-url"] === undefined ? {} : { docsUrl: values["docs-url"] }),
    ...(values.filter === undefined ? {} : { filter: new RegExp(values.filter) }),
    ...(concurrency === undefined ? {} : { concurrency }),
    ...(timeoutScale === undefined ? {} : { timeoutScale }),
    bail: values.bail,
    onPlan: (plan) => progress?.plan(plan.total),
    onCaseStart: (id) => progress?.caseStarted(id),
    onResult(result) {
      progress?.caseFinished(result);
      if (!values.quiet || (result.status !== "pass" && result.status !== "skip")) print(formatCaseLine(result));
    },
  }).finally(() => progress?.stop());
  console.log(formatConsoleSummary(report, { trace: values.trace, ...(values["docs-url"] === undefined ? {} : { docsUrl: values["docs-url"] }) }));
  return succeeded ? 0 : 1;
}

// A case that leaves a promise unobserved is a harness bug; it must not take the whole run
// (and the server it spawned) down with it.
process.on("unhandledRejection", (reason) => {
  console.error(`harness warning: unobserved rejection: ${reason instanceof Error ? reason.message : String(reason)}`);
});

// Ctrl-C: exit through process "exit" handlers, which stop any server the suite spawned.
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(130));

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`conformance run failed: ${error instanceof Error ? error.message : String(error)}`);
    console.log("0 passed, 0 failed, 0 skipped");
    process.exitCode = 2;
  },
);
