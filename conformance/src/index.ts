/**
 * The Continuity conformance suite as a library, for tools that want to run it without the
 * CLI (CI wrappers, the mutant runner). The CLI (`src/cli.ts`) is the supported entry point
 * for implementers; see README.md.
 */
export { runConformance, REFERENCE_SERVER, SPAWN_AUDIENCE } from "./run.js";
export type { RunOptions, RunOutcome } from "./run.js";
export { ALL_CASES } from "./cases/index.js";
export { defineCase } from "./harness/define-case.js";
export type { CaseDefinition, ConformanceCase, ProfileName, CaseNeed } from "./harness/define-case.js";
export type { CaseContext, Session } from "./harness/context.js";
export type { CaseResult, CaseStatus, SuiteReport } from "./runner/run-suite.js";
export { formatJsonReport } from "./reporters/json.js";
export { formatJunitReport } from "./reporters/junit.js";
export { runSucceeded } from "./reporters/summary.js";
