import type { CaseStatus, SuiteReport } from "../runner/run-suite.js";

/** Counts per status, in a fixed order so that reports diff cleanly. */
export function countStatuses(report: SuiteReport): Record<CaseStatus, number> {
  const counts: Record<CaseStatus, number> = { pass: 0, fail: 0, warn: 0, skip: 0, "expected-fail": 0, "unexpected-pass": 0, error: 0 };
  for (const result of report.results) counts[result.status] += 1;
  return counts;
}

/**
 * Whether the run certifies the implementation: no MUST failure, no unexpected pass, no
 * harness error and no stale known-failure entry. Warnings (SHOULD) do not fail a run.
 */
export function runSucceeded(report: SuiteReport): boolean {
  const counts = countStatuses(report);
  return counts.fail === 0 && counts["unexpected-pass"] === 0 && counts.error === 0 && report.errors.length === 0;
}
