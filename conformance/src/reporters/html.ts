import type { RequirementSet } from "../runner/requirements.js";
import type { CaseResult, CaseStatus, SuiteReport } from "../runner/run-suite.js";
import { requirementUrl, type RequirementLinkOptions } from "./requirement-links.js";
import { countStatuses, runSucceeded } from "./summary.js";

/** What the HTML report can show beyond the run itself. */
export interface HtmlReportOptions extends RequirementLinkOptions {
  /** The requirement set the run was judged against: adds each requirement's level and text. */
  readonly requirements?: RequirementSet;
}

/** Worst first: a requirement shows the worst status of the cases that prove it. */
const SEVERITY: readonly CaseStatus[] = ["error", "fail", "unexpected-pass", "warn", "expected-fail", "pass", "skip"];

const LABELS: Record<CaseStatus, string> = {
  pass: "pass",
  fail: "FAIL",
  warn: "warn",
  skip: "skip",
  "expected-fail": "expected fail",
  "unexpected-pass": "UNEXPECTED PASS",
  error: "ERROR",
};

/**
 * A self-contained HTML page (no scripts or assets from elsewhere, so it can be archived or
 * mailed as one file): the run's verdict and counts, then per profile every requirement its
 * cases prove with the worst status among them, and per case its status, message, the
 * evidence it noted and, for a case that did not pass, the wire exchange it recorded.
 */
export function formatHtmlReport(report: SuiteReport, options: HtmlReportOptions = {}): string {
  const counts = countStatuses(report);
  const succeeded = runSucceeded(report);
  const profiles = [...new Set(report.results.map((r) => r.profile))];
  const sections = profiles.map((profile) => formatProfile(profile, report.results.filter((r) => r.profile === profile), options));
  const facts: [string, string][] = [
    ["Target", report.target],
    ["Implementation", report.implementation],
    ["Mode", report.mode],
    ["Profiles claimed", report.claimedProfiles.join(", ") || "none"],
    ["Profiles declared", report.declaredProfiles.join(", ") || "none"],
    ["Suite version", report.suiteVersion],
    ["Requirements (SHA-256)", report.requirementsSha256 ?? "unknown"],
    ["Started", report.startedAt],
    ["Duration", `${(report.durationMs / 1000).toFixed(1)} s`],
  ];
  const notes = [
    ...report.errors.map((error) => `<li class="status-error">Run error: ${escape(error)}</li>`),
    ...(report.profileMismatch === undefined ? [] : [`<li>Note: ${escape(report.profileMismatch)}</li>`]),
  ];
  const serverOutput =
    report.serverOutput === undefined || report.serverOutput === ""
      ? ""
      : `<details class="server-output"><summary>Server output (tail)</summary><pre>${escape(report.serverOutput)}</pre></details>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Continuity conformance: ${escape(report.implementation)} — ${succeeded ? "passed" : "failed"}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>Continuity conformance report</h1>
<p class="verdict ${succeeded ? "status-pass" : "status-fail"}">${succeeded ? "Passed" : "Failed"}: ${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped${counts.warn + counts.error + counts["expected-fail"] + counts["unexpected-pass"] > 0 ? ` (${counts.warn} warned, ${counts.error} error, ${counts["expected-fail"]} expected-fail, ${counts["unexpected-pass"]} unexpected-pass)` : ""}</p>
<dl>${facts.map(([term, value]) => `<dt>${escape(term)}</dt><dd>${escape(value)}</dd>`).join("")}</dl>
${notes.length === 0 ? "" : `<ul class="run-notes">${notes.join("")}</ul>`}
<nav>${profiles.map((profile) => `<a href="#profile-${escape(profile)}">${escape(profile)}</a>`).join(" · ")}</nav>
</header>
<main>
${sections.join("\n")}
${serverOutput}
</main>
</body>
</html>
`;
}

function formatProfile(profile: string, results: readonly CaseResult[], options: HtmlReportOptions): string {
  const byRequirement = new Map<string, CaseResult[]>();
  for (const result of results) {
    for (const id of result.requirements) byRequirement.set(id, [...(byRequirement.get(id) ?? []), result]);
  }
  const requirementIds = [...byRequirement.keys()].sort(compareRequirementIds);
  const rows = requirementIds.map((id) => {
    const cases = byRequirement.get(id)!;
    const status = worst(cases.map((c) => c.status));
    const requirement = options.requirements?.byId.get(id);
    const name = options.docsUrl === undefined || options.docsUrl === "" ? escape(id) : `<a href="${escape(requirementUrl(id, options.docsUrl))}">${escape(id)}</a>`;
    const caseLinks = cases.map((c) => `<a class="status-${c.status}" href="#case-${escape(c.id)}">${escape(c.id)}</a>`).join("<br>");
    return `<tr class="status-${status}"><td>${name}</td><td>${escape(requirement?.level ?? "")}</td><td><span class="badge status-${status}">${escape(LABELS[status])}</span></td><td>${caseLinks}</td><td class="text">${escape(requirement?.text ?? "")}</td></tr>`;
  });
  const counts = new Map<CaseStatus, number>();
  for (const result of results) counts.set(result.status, (counts.get(result.status) ?? 0) + 1);
  const summary = SEVERITY.filter((s) => counts.has(s)).map((s) => `${counts.get(s)} ${LABELS[s]}`).join(", ");
  return `<section id="profile-${escape(profile)}">
<h2>Profile ${escape(profile)} <small>${escape(summary)}</small></h2>
<h3>Requirements</h3>
<table class="requirements"><thead><tr><th>Requirement</th><th>Level</th><th>Status</th><th>Cases</th><th>Text</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody></table>
<h3>Cases</h3>
${results.map((result) => formatCase(result, options)).join("\n")}
</section>`;
}

function formatCase(result: CaseResult, options: HtmlReportOptions): string {
  const troubled = result.status !== "pass" && result.status !== "skip";
  const parts: string[] = [];
  if (result.message !== undefined) parts.push(`<p class="message">${escape(result.message)}</p>`);
  const requirementLinks = result.requirements
    .map((id) => (options.docsUrl === undefined || options.docsUrl === "" ? escape(id) : `<a href="${escape(requirementUrl(id, options.docsUrl))}">${escape(id)}</a>`))
    .join(", ");
  parts.push(`<p>Requirements: ${requirementLinks} · level ${escape(result.level)} · ${result.durationMs} ms</p>`);
  if (result.evidence !== undefined && result.evidence.length > 0) {
    parts.push(`<h4>Evidence</h4><ul class="evidence">${result.evidence.map((note) => `<li>${escape(note)}</li>`).join("")}</ul>`);
  }
  if (result.trace !== undefined) parts.push(`<h4>Wire exchange</h4><pre class="trace">${escape(result.trace)}</pre>`);
  // Problems open by default, so the page reads as a list of what to fix.
  return `<details id="case-${escape(result.id)}" class="case status-${result.status}"${troubled ? " open" : ""}><summary><span class="badge status-${result.status}">${escape(LABELS[result.status])}</span> <code>${escape(result.id)}</code></summary>
${parts.join("\n")}
</details>`;
}

function worst(statuses: readonly CaseStatus[]): CaseStatus {
  return SEVERITY.find((status) => statuses.includes(status)) ?? "skip";
}

/** `AREA-NNN` ordered by area, then number. */
function compareRequirementIds(a: string, b: string): number {
  const [areaA = "", numberA = "0"] = a.split("-");
  const [areaB = "", numberB = "0"] = b.split("-");
  return areaA === areaB ? Number(numberA) - Number(numberB) : areaA < areaB ? -1 : 1;
}

function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1rem 2rem; color: #1d1d1f; }
h1 { margin-bottom: .25rem; } h2 small { font-weight: normal; color: #666; font-size: .8em; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; } dt { color: #666; } dd { margin: 0; word-break: break-all; }
.verdict { font-size: 1.2em; font-weight: 600; padding: .4rem .8rem; border-radius: 4px; display: inline-block; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1rem; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
td.text { color: #444; font-size: .92em; }
.badge { display: inline-block; min-width: 4.5em; text-align: center; border-radius: 3px; padding: 0 .4em; font-size: .85em; font-weight: 600; }
details.case { border: 1px solid #ddd; border-radius: 4px; margin: .3rem 0; padding: .3rem .6rem; }
details.case > summary { cursor: pointer; }
pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; font-size: 12px; }
.message { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 12px; }
.status-pass.badge, .verdict.status-pass { background: #d9f2dd; color: #14532d; }
.status-fail.badge, .status-error.badge, .status-unexpected-pass.badge, .verdict.status-fail { background: #fbd5d5; color: #7f1d1d; }
.status-warn.badge, .status-expected-fail.badge { background: #fdf0c4; color: #713f12; }
.status-skip.badge { background: #e5e7eb; color: #374151; }
a.status-fail, a.status-error, a.status-unexpected-pass, li.status-error { color: #b91c1c; }
`;
