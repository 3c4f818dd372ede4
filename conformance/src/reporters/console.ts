import type { CaseResult, SuiteReport } from "../runner/run-suite.js";
import { requirementUrls, type RequirementLinkOptions } from "./requirement-links.js";
import { countStatuses } from "./summary.js";

const LABELS: Record<CaseResult["status"], string> = {
  pass: "PASS",
  fail: "FAIL",
  warn: "WARN",
  skip: "SKIP",
  "expected-fail": "XFAIL",
  "unexpected-pass": "XPASS",
  error: "ERROR",
};

/** One line per finished case, printed as results arrive. */
export function formatCaseLine(result: CaseResult): string {
  const requirements = result.requirements.join(",");
  const head = `${LABELS[result.status].padEnd(5)} ${result.id} [${requirements}] ${result.durationMs}ms`;
  return result.status === "pass" || result.message === undefined ? head : `${head}\n      ${result.message.split("\n").join("\n      ")}`;
}

/**
 * The end of the console output: details of what went wrong, counts of the rarer statuses,
 * and exactly one final line `N passed, M failed, K skipped` that CI logs can grep.
 */
export function formatConsoleSummary(report: SuiteReport, options: { trace: boolean } & RequirementLinkOptions): string {
  const lines: string[] = [];
  const troubled = report.results.filter((r) => r.status === "fail" || r.status === "error" || r.status === "warn" || r.status === "unexpected-pass");
  for (const result of troubled) {
    lines.push("", `${LABELS[result.status]} ${result.id} (${result.level}; ${result.requirements.join(", ")})`);
    if (result.message !== undefined) lines.push(`  ${result.message}`);
    for (const url of requirementUrls(result.requirements, options)) lines.push(`  requirement: ${url}`);
    for (const note of result.evidence ?? []) lines.push(`  note: ${note}`);
    if (options.trace && result.trace !== undefined) lines.push("  wire exchange:", result.trace);
  }
  if (report.serverOutput !== undefined && report.serverOutput !== "" && troubled.length > 0) {
    lines.push("", "--- server output (tail) ---", report.serverOutput.trimEnd().split("\n").slice(-40).join("\n"));
  }
  for (const error of report.errors) lines.push("", `RUN ERROR: ${error}`);
  if (report.profileMismatch !== undefined && report.errors.length === 0) lines.push("", `note: ${report.profileMismatch}`);
  const counts = countStatuses(report);
  lines.push(
    "",
    `target ${report.target} (${report.implementation}); profiles claimed ${report.claimedProfiles.join(",")}, declared ${report.declaredProfiles.join(",")}`,
    `${counts.warn} warned, ${counts["expected-fail"]} expected-fail, ${counts["unexpected-pass"]} unexpected-pass, ${counts.error} error, ${report.errors.length} run errors`,
    `${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped`,
  );
  return lines.join("\n");
}
