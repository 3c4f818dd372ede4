import type { CaseResult, SuiteReport } from "../runner/run-suite.js";
import { requirementUrls, type RequirementLinkOptions } from "./requirement-links.js";
import { countStatuses } from "./summary.js";

/**
 * JUnit XML as CI tools read it (one testsuite per profile). Warnings pass with a
 * system-out note, known failures count as skipped with their reason, and unexpected
 * passes and harness errors are failures/errors, so CI agrees with the exit code. With a docs
 * URL each case's properties and failure text link to the pages of its requirements.
 */
export function formatJunitReport(report: SuiteReport, options?: RequirementLinkOptions): string {
  const byProfile = new Map<string, CaseResult[]>();
  for (const result of report.results) byProfile.set(result.profile, [...(byProfile.get(result.profile) ?? []), result]);
  const counts = countStatuses(report);
  const suites = [...byProfile.entries()].map(([profile, results]) => {
    const failures = results.filter((r) => r.status === "fail" || r.status === "unexpected-pass").length;
    const errors = results.filter((r) => r.status === "error").length;
    const skipped = results.filter((r) => r.status === "skip" || r.status === "expected-fail").length;
    const time = results.reduce((sum, r) => sum + r.durationMs, 0) / 1000;
    const cases = results.map((result) => formatCase(result, requirementUrls(result.requirements, options))).join("\n");
    return `  <testsuite name="continuity.${escape(profile)}" tests="${results.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${time.toFixed(3)}" timestamp="${escape(report.startedAt.replace(/Z$/, ""))}">\n${cases}\n  </testsuite>`;
  });
  const runErrors = report.errors.map(
    (error, index) =>
      `  <testsuite name="continuity.run" tests="1" failures="0" errors="1" skipped="0" time="0"><testcase classname="continuity.run" name="run-error-${index + 1}" time="0"><error message="${escape(error)}"/></testcase></testsuite>`,
  );
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<testsuites name="continuity-conformance" tests="${report.results.length + report.errors.length}" failures="${counts.fail + counts["unexpected-pass"]}" errors="${counts.error + report.errors.length}" time="${(report.durationMs / 1000).toFixed(3)}">`,
    ...suites,
    ...runErrors,
    `</testsuites>`,
    "",
  ].join("\n");
}

function formatCase(result: CaseResult, urls: readonly string[]): string {
  const open = `    <testcase classname="continuity.${escape(result.profile)}" name="${escape(result.id)}" time="${(result.durationMs / 1000).toFixed(3)}">`;
  const links = urls.map((url) => `<property name="requirement-url" value="${escape(url)}"/>`).join("");
  const properties = `      <properties>${result.requirements.map((id) => `<property name="requirement" value="${escape(id)}"/>`).join("")}${links}<property name="level" value="${result.level}"/></properties>`;
  const message = escape(result.message ?? "");
  const trace = escape([...urls.map((url) => `requirement: ${url}`), result.trace ?? ""].filter((line) => line !== "").join("\n"));
  const body = (() => {
    switch (result.status) {
      case "pass":
        return "";
      case "fail":
        return `      <failure message="${message}" type="${result.level}">${trace}</failure>`;
      case "unexpected-pass":
        return `      <failure message="${message}" type="unexpected-pass"/>`;
      case "error":
        return `      <error message="${message}" type="harness">${trace}</error>`;
      case "skip":
      case "expected-fail":
        return `      <skipped message="${message}"/>`;
      case "warn":
        return `      <system-out>${escape(`WARN (${result.level}): ${result.message ?? ""}`)}</system-out>`;
    }
  })();
  return [open, properties, body, "    </testcase>"].filter((line) => line !== "").join("\n");
}

// XML 1.0 forbids most control characters even when escaped; drop them.
function escape(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}
