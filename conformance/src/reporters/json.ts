import type { SuiteReport } from "../runner/run-suite.js";
import { requirementUrls, type RequirementLinkOptions } from "./requirement-links.js";
import { countStatuses, runSucceeded } from "./summary.js";

/**
 * The machine-readable report. `requirementsSha256` pins the exact spec requirement set the
 * run was judged against, so a certificate can be checked later. With a docs URL every case
 * also carries `requirementUrls`, the page of each of its requirements.
 */
export function formatJsonReport(report: SuiteReport, options?: RequirementLinkOptions): string {
  return `${JSON.stringify(
    {
      format: "continuity-conformance-report/1",
      suiteVersion: report.suiteVersion,
      requirementsSha256: report.requirementsSha256 ?? null,
      target: report.target,
      mode: report.mode,
      implementation: report.implementation,
      claimedProfiles: report.claimedProfiles,
      declaredProfiles: report.declaredProfiles,
      profileMismatch: report.profileMismatch ?? null,
      startedAt: report.startedAt,
      durationMs: report.durationMs,
      succeeded: runSucceeded(report),
      counts: countStatuses(report),
      errors: report.errors,
      cases: report.results.map((result) => ({
        id: result.id,
        status: result.status,
        level: result.level,
        profile: result.profile,
        requirements: result.requirements,
        ...(options?.docsUrl === undefined ? {} : { requirementUrls: requirementUrls(result.requirements, options) }),
        durationMs: result.durationMs,
        message: result.message ?? null,
        evidence: result.evidence ?? [],
        trace: result.trace ?? null,
      })),
    },
    null,
    2,
  )}\n`;
}
