import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { Instrumenter } from "@stryker-mutator/instrumenter";
import { MutantRunStatus, DryRunStatus, TestStatus } from "@stryker-mutator/api/test-runner";
import type { Logger } from "@stryker-mutator/api/logging";
import type { Mutant, StrykerOptions } from "@stryker-mutator/api/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVER_PACKAGE, strykerOptions } from "../src/mutation.js";
import { ConformanceTestRunner, strykerPlugins } from "../src/mutation/stryker-runner.js";

// `pnpm conformance:mutation` runs for hours and not in CI. This drives its test runner plugin
// the way Stryker does, in this process and within seconds: a copy of the server's sources
// with one handler instrumented by Stryker's own instrumenter, a dry run that must attribute
// the handler's mutants to the one case that reaches them, and mutant runs that case must kill.
const quiet: Logger = {
  isTraceEnabled: () => false,
  isDebugEnabled: () => false,
  isInfoEnabled: () => false,
  isWarnEnabled: () => true,
  isErrorEnabled: () => true,
  isFatalEnabled: () => true,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string) => console.warn(message),
  error: (message: string) => console.error(message),
  fatal: (message: string) => console.error(message),
};

const CASE = "server-info.public-and-complete";
let sandbox: string;
let mutants: readonly Mutant[];
let runner: ConformanceTestRunner;

beforeAll(async () => {
  // Inside the server package, as Stryker's sandbox is, so the copy resolves its dependencies.
  await mkdir(join(SERVER_PACKAGE, ".stryker-tmp"), { recursive: true });
  sandbox = await mkdtemp(join(SERVER_PACKAGE, ".stryker-tmp", "runner-test-"));
  await cp(join(SERVER_PACKAGE, "src"), join(sandbox, "src"), { recursive: true });
  const file = join(sandbox, "src", "services", "server-info-service.ts");
  const source = await readFile(file, "utf8");
  const line = source.split("\n").findIndex((text) => text.includes("protocolVersions: [...SUPPORTED_PROTOCOL_VERSIONS]"));
  expect(line).toBeGreaterThan(0);
  const instrumented = await new Instrumenter(quiet).instrument(
    [{ name: file, content: source, mutate: [{ start: { line, column: 0 }, end: { line: line + 1, column: 1000 } }] }],
    { plugins: null, excludedMutations: [], ignorers: [] },
  );
  await writeFile(file, instrumented.files[0]!.content);
  mutants = instrumented.mutants;
  runner = new ConformanceTestRunner(quiet, { conformance: { srcDir: join(sandbox, "src"), filter: `^${CASE.replace(".", "\\.")}$`, concurrency: 1 } } as unknown as StrykerOptions);
  await runner.init();
}, 60_000);

afterAll(async () => {
  await runner?.dispose();
  if (sandbox !== undefined) await rm(sandbox, { recursive: true, force: true });
});

describe("the conformance test runner for Stryker", () => {
  it("is the runner the configuration names, and the configuration's plugin file exists", () => {
    const options = strykerOptions();
    expect(options["testRunner"]).toBe(strykerPlugins[0]!.name);
    expect((options["plugins"] as string[]).map((url) => existsSync(fileURLToPath(url)))).toEqual([true, true]);
    expect(options["coverageAnalysis"]).toBe("perTest");
  });

  it("attributes each mutant to the case that reaches it, and that case kills it", async () => {
    // `[...SUPPORTED_PROTOCOL_VERSIONS]` and `[...CLAIMED_PROFILES]` emptied.
    expect(mutants.map((m) => m.mutatorName)).toEqual(["ArrayDeclaration", "ArrayDeclaration"]);
    const dry = await runner.dryRun({ coverageAnalysis: "perTest", timeout: 60_000, disableBail: false });
    if (dry.status !== DryRunStatus.Complete) throw new Error(`dry run: ${JSON.stringify(dry)}`);
    expect(dry.tests.map((t) => [t.id, t.status])).toEqual([[CASE, TestStatus.Success]]);
    const covered = dry.mutantCoverage!.perTest[CASE] ?? {};
    expect(mutants.every((m) => (covered[m.id] ?? 0) > 0)).toBe(true);
    expect(mutants.some((m) => (dry.mutantCoverage!.static[m.id] ?? 0) > 0)).toBe(false);

    for (const mutant of mutants) {
      const result = await runner.mutantRun({
        activeMutant: mutant,
        testFilter: [CASE],
        timeout: 60_000,
        disableBail: false,
        sandboxFileName: mutant.fileName,
        mutantActivation: "runtime",
        reloadEnvironment: false,
      });
      expect(result).toMatchObject({ status: MutantRunStatus.Killed, killedBy: [CASE] });
    }
    // With no mutant active the same case passes: the kills above were the mutants' doing.
    const unmutated = await runner.mutantRun({
      activeMutant: { ...mutants[0]!, id: "no-such-mutant" },
      testFilter: [CASE],
      timeout: 60_000,
      disableBail: false,
      sandboxFileName: mutants[0]!.fileName,
      mutantActivation: "runtime",
      reloadEnvironment: false,
    });
    expect(unmutated.status).toBe(MutantRunStatus.Survived);
  }, 60_000);
});
